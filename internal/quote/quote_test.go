package quote

import "testing"

func TestClipped(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, `"plain"`},
		{"\r\n<script>\x00é", 64, `"\r\n<script>\x00\u00e9"`},
		{"0123456789abcdefghijk", 10, `"0123456789"...`},
	} {
		if got := Clipped(c.in, c.max); got != c.want {
			t.Errorf("Clipped(%q, %d) = %s, want %s", c.in, c.max, got, c.want)
		}
	}
}
