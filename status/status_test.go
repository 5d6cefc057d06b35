package status

import "testing"

func TestMobileRouterState(t *testing.T) {
	for _, c := range []struct {
		states []string
		want   string
	}{
		{nil, StateDown},
		{[]string{StateDown, StateDown}, StateDown},
		{[]string{StateDown, StateRegistering}, StateRegistering},
		{[]string{StateRegistering, StateRegistered, StateDown}, StateRegistered},
	} {
		var m MobileRouter
		for _, s := range c.states {
			m.Bindings = append(m.Bindings, Binding{State: s})
		}
		if got := m.State(); got != c.want {
			t.Errorf("%v: %s, want %s", c.states, got, c.want)
		}
	}
}
