package lab

import (
	"os/exec"
	"testing"

	"nemod/internal/testenv"
)

// TestExampleBirdConfig: the bird 2 configuration shipped for home agents
// is one bird takes. The lab's (birdConf), which the routing test runs,
// exports the same routes the same way.
func TestExampleBirdConfig(t *testing.T) {
	bird := testenv.NeedTool(t, "bird")
	const c = "../packaging/examples/bird2-homeagent.conf"
	if out, err := exec.Command(bird, "-p", "-c", c).CombinedOutput(); err != nil {
		t.Errorf("bird -p -c %s: %v\n%s", c, err, out)
	}
}
