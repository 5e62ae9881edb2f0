package live

import "testing"

// TestEncodeEndsALineAtEveryLineEnding: the browser's event-stream parser
// ends a line at \r\n, \n and a lone \r alike, so each must start a new
// data: line; a lone \r left in the data would let what follows it (a
// caller's name, say) be read as a field of its own.
func TestEncodeEndsALineAtEveryLineEnding(t *testing.T) {
	for _, tt := range []struct {
		name, data, want string
	}{
		{"one line", "<p>a</p>", "event: call\ndata: <p>a</p>\n\n"},
		{"newline", "a\nb", "event: call\ndata: a\ndata: b\n\n"},
		{"crlf", "a\r\nb", "event: call\ndata: a\ndata: b\n\n"},
		{"lone cr", "Eve\rid: 999\revent: bogus", "event: call\ndata: Eve\ndata: id: 999\ndata: event: bogus\n\n"},
		{"cr then lf apart", "a\r\rb\n", "event: call\ndata: a\ndata: \ndata: b\ndata: \n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(encode(Message{Event: "call", Data: tt.data}).wire); got != tt.want {
				t.Errorf("encode(%q) = %q, want %q", tt.data, got, tt.want)
			}
		})
	}
}
