package upgrade

import "testing"

func TestMainPID(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want int
		ok   bool
	}{
		{"READY=1\nMAINPID=42\nSTATUS=serving", 42, true},
		{"MAINPID=7", 7, true},
		{"READY=1", 0, false},
		{"MAINPID=1", 0, false}, // never itself
		{"MAINPID=-5", 0, false},
		{"MAINPID=x", 0, false},
	} {
		if got, ok := mainPID(tc.msg); got != tc.want || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}
