package adapter

import "testing"

func TestOffsetAfter(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"2", "1", true}, {"1", "2", false}, {"a", "9", true}, {"1", "1", false},
		{"1795732004283-1", "1795732004283-0", true}, {"1795732004283-0", "1795732004283-0", false},
		{"1795732004282-9", "1795732004283-0", false}, {"x", "", true}, {"", "1", false}, {"?!", "1", true},
		{"0-10", "0-9", true}, {"0-9", "0-10", false},
	}
	for _, tt := range tests {
		if got := OffsetAfter(tt.a, tt.b); got != tt.want {
			t.Errorf("OffsetAfter(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
