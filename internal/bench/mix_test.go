package bench

import (
	"math/rand/v2"
	"testing"
)

func TestMixPicksByWeight(t *testing.T) {
	m, err := ParseMix("push=10,email=5,sms=1")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	got := map[string]int{}
	const n = 160000
	for range n {
		got[m.pick(rng)]++
	}
	for c, w := range map[string]int{"push": 10, "email": 5, "sms": 1} {
		want := n * w / 16
		if d := got[c] - want; d < -want/20 || d > want/20 {
			t.Errorf("%s picked %d times of %d, want about %d", c, got[c], n, want)
		}
	}
}

func TestParseMixRejects(t *testing.T) {
	for _, s := range []string{"", "push", "push=x", "fax=1", "push=0", "push=-1"} {
		if _, err := ParseMix(s); err == nil {
			t.Errorf("ParseMix(%q) accepted", s)
		}
	}
}
