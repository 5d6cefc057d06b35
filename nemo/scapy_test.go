package nemo

// scapy as an independent encoder: testdata/scapy_build.py builds packets
// with Debian's python3-scapy 2.5, and nemo must decode exactly what the
// script says it set and agree with scapy's checksums.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"reflect"
	"sync"
	"testing"

	"nemod/internal/testenv"
)

// scapyPython is Debian's interpreter: the python3 found first on PATH may
// be another installation without scapy.
const scapyPython = "/usr/bin/python3"

type scapyPacket struct {
	Name           string   `json:"name"`
	Hex            string   `json:"hex"`
	Set            scapySet `json:"set"`
	Chksum         uint16   `json:"in6_chksum"`
	ChksumReparsed uint16   `json:"in6_chksum_reparsed"`
	raw            []byte
}

// scapySet is what the script chose; absent fields are zero.
type scapySet struct {
	Type        uint8          `json:"type"`
	Src         netip.Addr     `json:"src"`
	Dst         netip.Addr     `json:"dst"`
	HAO         netip.Addr     `json:"hao"`
	RH2         netip.Addr     `json:"rh2"`
	Seq         uint16         `json:"seq"`
	Flags       []string       `json:"flags"`
	Reserved    uint16         `json:"reserved"` // BU flag bits scapy 2.5 has no names for
	Lifetime    uint16         `json:"lifetime"`
	Status      uint8          `json:"status"`
	Home        netip.Addr     `json:"home"`
	AltCoA      netip.Addr     `json:"altcoa"`
	MNPs        []netip.Prefix `json:"mnps"`
	MNIDSubtype uint8          `json:"mnid_subtype"`
	MNID        string         `json:"mnid"`
	Timestamp   uint64         `json:"timestamp"`
	AuthSubtype uint8          `json:"auth_subtype"`
	SPI         uint32         `json:"spi"`
	Auth        string         `json:"auth"`
	MNHAKey     string         `json:"mnha_key"`
	Refresh     *uint16        `json:"refresh"`
	HomeNonce   *uint16        `json:"home_nonce"`
	CareofNonce uint16         `json:"careof_nonce"`
	BAD         string         `json:"bad"`
	Unknown     []struct {
		Type uint8  `json:"type"`
		Data string `json:"data"`
	} `json:"unknown"`
}

// scapyRun holds the script's output: it runs once for all the tests.
var scapyRun struct {
	once    sync.Once
	missing bool
	out     []byte
	err     error
}

// runScapy returns the script's packets, each test with its own copies.
func runScapy(t *testing.T) []*scapyPacket {
	t.Helper()
	r := &scapyRun
	r.once.Do(func() {
		if exec.Command(scapyPython, "-c", "import scapy.layers.inet6").Run() != nil {
			r.missing = true
			return
		}
		cmd := exec.Command(scapyPython, "testdata/scapy_build.py")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		r.out, r.err = cmd.Output()
		if r.err != nil {
			r.err = fmt.Errorf("scapy_build.py: %v\n%s", r.err, stderr.Bytes())
		}
	})
	if r.missing {
		testenv.Missing(t, "python3-scapy (Debian)")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	var pkts []*scapyPacket
	if err := json.Unmarshal(r.out, &pkts); err != nil {
		t.Fatalf("scapy_build.py output: %v\n%s", err, r.out)
	}
	if len(pkts) == 0 {
		t.Fatal("scapy_build.py built no packets")
	}
	for _, p := range pkts {
		raw, err := hex.DecodeString(p.Hex)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		p.raw = raw
	}
	return pkts
}

// scapyBUFlags maps scapy 2.5's BU flag names ("PRMKLHA", most significant
// bit last) to ours.
var scapyBUFlags = map[string]uint16{"A": BUFlagA, "H": BUFlagH, "L": BUFlagL, "K": BUFlagK, "M": BUFlagM, "R": BUFlagR, "P": BUFlagP}

// scapyBAFlags maps scapy 2.5's BA flag names ("PRK") to ours.
var scapyBAFlags = map[string]uint8{"K": BAFlagK, "R": BAFlagR, "P": BAFlagP}

// expected is the message the script says it built, in nemo's terms.
func (s *scapySet) expected() (Message, error) {
	var o Options
	o.AltCoA = s.AltCoA
	o.MNPs = s.MNPs
	if s.MNID != "" {
		o.HasMNID, o.MNIDSubtype, o.MNID = true, s.MNIDSubtype, []byte(s.MNID)
	}
	if s.Timestamp != 0 {
		o.HasTimestamp, o.Timestamp = true, s.Timestamp
	}
	if s.Auth != "" {
		data, err := hex.DecodeString(s.Auth)
		if err != nil {
			return nil, err
		}
		o.Auth = []Auth{{Subtype: s.AuthSubtype, SPI: s.SPI, Data: data}}
	}
	if s.Refresh != nil {
		o.HasRefreshAdvice, o.RefreshAdvice = true, *s.Refresh
	}
	if s.HomeNonce != nil {
		o.HasNonces, o.HomeNonce, o.CareofNonce = true, *s.HomeNonce, s.CareofNonce
	}
	if s.BAD != "" {
		b, err := hex.DecodeString(s.BAD)
		if err != nil {
			return nil, err
		}
		o.BindingAuthData = b
	}
	for _, u := range s.Unknown {
		data, err := hex.DecodeString(u.Data)
		if err != nil {
			return nil, err
		}
		o.Unknown = append(o.Unknown, RawOption{Type: u.Type, Data: data})
	}
	switch s.Type {
	case TypeBU:
		// scapy has no names for F and O: the script sets them as
		// "reserved" bits of the 16-bit word.
		fl := s.Reserved
		for _, f := range s.Flags {
			v, ok := scapyBUFlags[f]
			if !ok {
				return nil, fmt.Errorf("unknown BU flag %q", f)
			}
			fl |= v
		}
		return &BindingUpdate{Seq: s.Seq, Flags: fl, Lifetime: s.Lifetime, Options: o}, nil
	case TypeBA:
		var fl uint8
		for _, f := range s.Flags {
			v, ok := scapyBAFlags[f]
			if !ok {
				return nil, fmt.Errorf("unknown BA flag %q", f)
			}
			fl |= v
		}
		return &BindingAck{Status: s.Status, Flags: fl, Seq: s.Seq, Lifetime: s.Lifetime, Options: o}, nil
	case TypeBRR:
		return &BindingRefreshRequest{Options: o}, nil
	case TypeBE:
		return &BindingError{Status: s.Status, HomeAddress: s.Home, Options: o}, nil
	}
	return nil, fmt.Errorf("script built MH type %d, which this test does not know", s.Type)
}

// scapyComparable drops what the script cannot state (option offsets) and
// turns empty slices into nil.
func scapyComparable(m Message) {
	o := m.options()
	if o == nil {
		return
	}
	for i := range o.Auth {
		o.Auth[i].Off = 0
	}
	for i := range o.Unknown {
		o.Unknown[i].Off = 0
	}
	v := reflect.ValueOf(o).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
}

// checkScapyPacket compares nemo's decoding of one scapy packet with what
// the script set; r receives every difference.
func checkScapyPacket(r reporter, p *scapyPacket) {
	r.Helper()
	s := &p.Set
	pkt, err := ParsePacket(p.raw)
	if err != nil {
		r.Errorf("ParsePacket: %v", err)
		return
	}
	if pkt.Src != s.Src || pkt.Dst != s.Dst || pkt.HomeAddress != s.HAO || pkt.RH2Address != s.RH2 || pkt.HopLimit != 64 {
		r.Errorf("packet src %v dst %v HAO %v RH2 %v hop limit %d, want %v %v %v %v 64",
			pkt.Src, pkt.Dst, pkt.HomeAddress, pkt.RH2Address, pkt.HopLimit, s.Src, s.Dst, s.HAO, s.RH2)
	}
	got, err := Decode(pkt.MH)
	if err != nil {
		r.Errorf("Decode: %v", err)
		return
	}
	wantMsg, err := s.expected()
	if err != nil {
		r.Errorf("script output: %v", err)
		return
	}
	if s.MNHAKey != "" {
		// RFC 4285 §5.1 with care-of address = IPv6 source, home address
		// from the HAO: the script computed the MAC with Python's hmac.
		if err := NewAuthenticator([]byte(s.MNHAKey)).Verify(pkt.MH, got.options(), pkt.Src, pkt.HomeAddress); err != nil {
			r.Errorf("MN-HA authenticator computed by the script: %v", err)
		}
	}
	scapyComparable(got)
	scapyComparable(wantMsg)
	if !reflect.DeepEqual(got, wantMsg) {
		r.Errorf("decoded\n %#v\nscript set\n %#v", got, wantMsg)
	}
}

func TestScapyPacketsDecode(t *testing.T) {
	t.Parallel() // the external tool runs while other tests do
	for _, p := range runScapy(t) {
		t.Run(p.Name, func(t *testing.T) {
			raw := p.raw
			defer func() {
				if t.Failed() {
					t.Logf("scapy built %s\nscript set %+v", p.Hex, p.Set)
				}
			}()
			if p.Name == "rh2_segleft0" {
				// RFC 6275 §6.4 allows only Segments Left 1 in a type 2
				// routing header: the parser refuses anything else.
				var e *Error
				if _, err := ParsePacket(raw); !errors.As(err, &e) || e.Field != "type 2 routing header" {
					t.Errorf("Segments Left 0 accepted or refused for another reason: %v", err)
				}
				return
			}
			checkScapyPacket(t, p)
			if ts := p.Set.Timestamp; ts != 0 && ts != NTPTime(indTime) {
				// The script converts the same instant to NTP by itself.
				t.Errorf("NTPTime(%v) = %#x, Python says %#x", indTime, NTPTime(indTime), ts)
			}

			pkt, err := ParsePacket(raw)
			if err != nil {
				return // reported above
			}
			stored := uint16(pkt.MH[4])<<8 | uint16(pkt.MH[5])
			ps, pd := pkt.PseudoSrc(), pkt.PseudoDst()
			// The RFC's pseudo-header, stated from the script's own
			// addresses rather than taken from nemo.
			rs, rd := p.Set.Src, p.Set.Dst
			if p.Set.HAO.IsValid() {
				rs = p.Set.HAO
			}
			if p.Set.RH2.IsValid() {
				rd = p.Set.RH2
			}
			if ps != rs || pd != rd {
				t.Errorf("pseudo-header %v -> %v, want %v -> %v", ps, pd, rs, rd)
			}
			indep := mhChecksum(rs, rd, pkt.MH)
			if got := Checksum(ps, pd, pkt.MH); got != indep {
				t.Errorf("nemo.Checksum %#04x, independent recomputation %#04x", got, indep)
			}

			if p.Name == "padn_hao" {
				// scapy 2.5 honours the HAO in the pseudo-header only when
				// it is the one option object of the Destination Options
				// header (mip6-wire.md §2.1). Here the script listed PadN
				// and HAO, so scapy summed over the care-of address: the
				// packet is wrong per RFC 6275 §6.1.1 and nemo must drop it.
				if coaSum := mhChecksum(pkt.Src, pd, pkt.MH); p.Chksum != stored || p.Chksum != coaSum {
					t.Errorf("scapy's checksum %#04x (stored %#04x) is not the care-of address one %#04x", p.Chksum, stored, coaSum)
				}
				if VerifyChecksum(pkt.MH, ps, pd) {
					t.Error("VerifyChecksum accepted a checksum computed over the care-of address")
				}
				return
			}
			if p.Chksum != stored {
				t.Errorf("in6_chksum %#04x, but scapy wrote %#04x into the packet", p.Chksum, stored)
			}
			if !VerifyChecksum(pkt.MH, ps, pd) {
				t.Errorf("VerifyChecksum rejects scapy's checksum %#04x", stored)
			}
			if got := Checksum(ps, pd, pkt.MH); got != p.Chksum {
				t.Errorf("nemo.Checksum %#04x, scapy in6_chksum %#04x", got, p.Chksum)
			}
			// Parsed back, scapy sees "PadN + HAO" and falls back to the
			// care-of address: the same caveat, on every HAO packet.
			reparsed := p.Chksum
			if p.Set.HAO.IsValid() {
				reparsed = mhChecksum(pkt.Src, pd, pkt.MH)
			}
			if p.ChksumReparsed != reparsed {
				t.Errorf("in6_chksum on the re-parsed packet %#04x, want %#04x", p.ChksumReparsed, reparsed)
			}
		})
	}
}

// Our encoder, given the script's values, must reproduce scapy's octets
// where both follow the same padding rules.
func TestScapyOctetsMatchOurEncoder(t *testing.T) {
	t.Parallel()
	for _, p := range runScapy(t) {
		if p.Name == "padn_hao" || p.Name == "cn_bu" || p.Name == "rh2_segleft0" {
			// padn_hao carries a checksum over the wrong address; nemo
			// does not re-encode cn_bu's unknown option nor write an RH2
			// with Segments Left 0.
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			raw := p.raw
			m, err := p.Set.expected()
			if err != nil {
				t.Fatal(err)
			}
			mh, err := Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if p.Set.MNHAKey != "" {
				if err := NewAuthenticator([]byte(p.Set.MNHAKey)).Sign(mh, p.Set.Src, p.Set.HAO); err != nil {
					t.Fatal(err)
				}
			}
			pkt, err := AppendPacket(nil, p.Set.Src, p.Set.Dst, p.Set.HAO, p.Set.RH2, 64, mh)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pkt, raw) {
				t.Errorf("nemo\n %x\nscapy\n %x", pkt, raw)
			}
		})
	}
}

// The comparison must notice a one-octet change in a scapy packet: the
// sequence number here, and a flag bit.
func TestScapyCheckCatchesMutation(t *testing.T) {
	t.Parallel()
	for _, p := range runScapy(t) {
		if p.Name != "ba" {
			continue
		}
		raw := p.raw
		pkt, err := ParsePacket(raw)
		if err != nil {
			t.Fatal(err)
		}
		mhOff := len(raw) - len(pkt.MH)
		for _, off := range []int{9, 7} { // Sequence # low octet, flags
			q := *p
			q.raw = append([]byte(nil), raw...)
			q.raw[mhOff+off] ^= 0x40
			var r recorder
			checkScapyPacket(&r, &q)
			if len(r.errs) == 0 {
				t.Errorf("changing MH octet %d went unnoticed", off)
			}
		}
		q := *p
		q.raw = raw
		var r recorder
		checkScapyPacket(&r, &q)
		if len(r.errs) != 0 {
			t.Errorf("unchanged packet reported: %q", r.errs)
		}
		return
	}
	t.Fatal("the script built no BA")
}
