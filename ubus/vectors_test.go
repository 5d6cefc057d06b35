package ubus

import (
	"sync"
	"testing"

	"nemod/ubus/ubusvec"
)

// The transcripts are copies of the recordings of the real ubusd, ubus tool,
// libubus programs, rpcd, netifd and odhcpd (testdata/*/README.md).
var (
	vecOnce              sync.Once
	vecUbus, vecNetifd   []*ubusvec.Scenario
	vecUbusE, vecNetifdE error
)

func loadVectors(t testing.TB) (ubusScs, netifdScs []*ubusvec.Scenario) {
	t.Helper()
	vecOnce.Do(func() {
		vecUbus, vecUbusE = ubusvec.Load("testdata/ubus")
		vecNetifd, vecNetifdE = ubusvec.Load("testdata/netifd")
	})
	if vecUbusE != nil {
		t.Fatal(vecUbusE)
	}
	if vecNetifdE != nil {
		t.Fatal(vecNetifdE)
	}
	return vecUbus, vecNetifd
}

func allVectorFiles(t testing.TB) []*ubusvec.File {
	u, n := loadVectors(t)
	return append(ubusvec.Files(u), ubusvec.Files(n)...)
}
