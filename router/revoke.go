package router

import (
	"time"

	"nemod/status"
)

// Bindings the home agent revoked (RFC 5846): the binding update list
// checks and answers the indication and holds the bindings off; a reload
// ends the holdoff, as an operator who fixed what caused the revocation
// expects.

func (d *Daemon) reloadRevoked(now time.Time) {
	d.br.SetRevokedHoldoff(d.cfg.RevokedHoldoff)
	if len(d.br.Revoked()) > 0 {
		d.log.Info("reload ends the revocation holdoff: registering the revoked bindings again", "bids", d.br.Revoked())
		d.br.ClearRevoked(now)
	}
}

func (d *Daemon) revocationStatus() status.RouterRevocation {
	s := status.RouterRevocation{Taken: d.br.Revocations.Taken, Repeated: d.br.Revocations.Repeated,
		Revoked: d.br.Revoked(), AllRevoked: d.br.AllRevoked()}
	if s.Revoked == nil {
		s.Revoked = []uint16{}
	}
	if t := d.br.HoldoffUntil(); !t.IsZero() {
		s.HoldoffUntil = t.UTC().Format(time.RFC3339Nano)
	}
	return s
}
