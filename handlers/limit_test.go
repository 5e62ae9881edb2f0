package handlers

import "testing"

// TestLimitKeepsCallerTextOnOneLine: what a caller's network sends is
// stored as one line of valid text, whatever bytes it holds.
func TestLimitKeepsCallerTextOnOneLine(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"plain", "Eve Example", 64, "Eve Example"},
		{"line breaks and tab", "Eve\rid: 9\nevent: x\r\n\tend", 64, "Eve id: 9 event: x   end"},
		{"NUL dropped, DEL spaced", "a\x00b\x7fc", 64, "ab c"},
		{"invalid UTF-8", "a\xffb", 64, "a\uFFFDb"},
		{"cut on a character", "aé", 2, "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := limit(tt.in, tt.n); got != tt.want {
				t.Errorf("limit(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}
