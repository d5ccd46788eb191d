package version

import (
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
)

func TestString(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 5, 3, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		c    Commit
		want string
	}{
		{Commit{Count: 12, Time: at, Hash: "9d28f89"}, "0.0.0~git20261207080503.12.g9d28f89"},
		{Commit{Count: 13, Time: at, Hash: "abc1234", Dirty: true}, "0.0.0~git20261207080503.13.gabc1234.dirty"},
		{Commit{Tag: "v1.2.3", Time: at, Hash: "abc1234"}, "1.2.3"},
		{Commit{Tag: "v1.2.3", Time: at, Hash: "abc1234", Dirty: true}, "1.2.4~git20261207080503.0.gabc1234.dirty"},
		{Commit{Tag: "v1.2.3", Count: 4, Time: at, Hash: "0123456"}, "1.2.4~git20261207080503.4.g0123456"},
		{Commit{Tag: "v2.0.0-rc-1", Time: at, Hash: "abc1234"}, "2.0.0~rc.1"},
		{Commit{Tag: "v2.0.0-rc.1", Count: 2, Time: at, Hash: "abc1234"}, "2.0.0~rc.1.git20261207080503.2.gabc1234"},
		{Commit{Tag: "release-5", Count: 2, Time: at, Hash: "abc1234"}, "0.0.0~git20261207080503.2.gabc1234"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.c, got, tc.want)
		}
	}
}

// A history's versions, commit after commit, each later than the one
// before for dpkg (and so rpm, whose ~ is dpkg's) and for Helm's SemVer:
// hashes that start with a digit and with a letter alike (a hash alone
// once ordered 9d28f89 above 0.0.0~git...), untagged, tagged, after a tag,
// a release candidate and after it.
func TestSuccessiveVersionsOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	history := []Commit{
		{Count: 1, Time: min(0), Hash: "fa0b1c2"},
		{Count: 2, Time: min(1), Hash: "9d28f89"},
		{Count: 3, Time: min(1), Hash: "0a1b2c3"}, // the same second: the count orders them
		{Count: 4, Time: min(2), Hash: "abcdef0"},
		{Count: 10, Time: min(3), Hash: "1234567", Dirty: true},
		{Tag: "v0.1.0", Time: min(4), Hash: "ffff000"},
		{Tag: "v0.1.0", Count: 1, Time: min(5), Hash: "0000fff"},
		{Tag: "v0.1.0", Count: 9, Time: min(6), Hash: "e000001"},
		{Tag: "v0.1.1", Time: min(7), Hash: "5555555"},
		{Tag: "v0.2.0-rc.1", Time: min(8), Hash: "b000000"},
		{Tag: "v0.2.0-rc.1", Count: 3, Time: min(9), Hash: "2000000"},
		{Tag: "v0.2.0-rc.2", Time: min(10), Hash: "c000000"},
		{Tag: "v0.2.0", Time: min(11), Hash: "3000000"},
		{Tag: "v0.2.0", Count: 1, Time: min(12), Hash: "d000000"},
		{Tag: "v0.10.0", Time: min(13), Hash: "4000000"},
	}
	for i := 1; i < len(history); i++ {
		a, b := history[i-1].String(), history[i].String()
		if compareDebian(a, b) >= 0 {
			t.Errorf("dpkg: %s is not before %s", a, b)
		}
		sa, err1 := semver.StrictNewVersion(strings.ReplaceAll(a, "~", "-"))
		sb, err2 := semver.StrictNewVersion(strings.ReplaceAll(b, "~", "-"))
		if err1 != nil || err2 != nil {
			t.Errorf("not SemVer 2: %s %v, %s %v", a, err1, b, err2)
		} else if sa.Compare(sb) >= 0 {
			t.Errorf("SemVer: %s is not before %s", sa, sb)
		}
	}
}

// The comparison itself, on Debian Policy's own examples.
func TestCompareDebian(t *testing.T) {
	for _, pair := range [][2]string{{"1.0~rc1", "1.0"}, {"1.0~~", "1.0~"}, {"1.0", "1.0.1"}, {"1.0", "1.0a"},
		{"1.0a", "1.0b"}, {"1.9", "1.10"}, {"0.0.0~git1", "0.0.1"}, {"1.0~", "1.0"}, {"1.0-1", "1.0-2"}, {"1:0.1", "2:0.0"}} {
		if compareDebian(pair[0], pair[1]) >= 0 || compareDebian(pair[1], pair[0]) <= 0 {
			t.Errorf("%s < %s does not hold", pair[0], pair[1])
		}
	}
	if compareDebian("1.0.0", "1.0.0") != 0 {
		t.Error("equal versions differ")
	}
}
