package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// sseMessage is one Server-Sent Event as a client sees it.
type sseMessage struct {
	// ID is the message's id: field, or 0 without one.
	ID    int64
	Event string
	// Data is the joined data: lines, kept only when asked for and valid
	// only until the callback that receives the message returns (the
	// reader reuses it); DataBytes counts them either way.
	Data      []byte
	DataBytes int
}

// openStream opens a Server-Sent Events stream: a GET that stays open.
// cookie is sent as the Cookie header ("" for none); a lastID above zero
// resumes after that event, as a reconnecting EventSource does.
func openStream(ctx context.Context, client *http.Client, u, cookie string, lastID int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return resp, nil
}

// readStream parses a stream and calls fn with each message until the
// stream ends or fn returns false. Thousands of these run at once beside
// the server under test, on the same CPUs, so every cycle they take is
// taken from the server: lines are read in place (ReadSlice), data is only
// gathered when keepData asks for it, into one buffer that fn sees and
// must not keep.
func readStream(r io.Reader, keepData bool, fn func(sseMessage) bool) error {
	br := bufio.NewReaderSize(r, 8<<10)
	var m sseMessage
	var data bytes.Buffer
	started := false
	for {
		line, err := br.ReadSlice('\n')
		long := errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !long {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if !long {
			line = trimEOL(line)
		}
		if len(line) == 0 && !long {
			// A blank line ends a message; comments alone (heartbeats)
			// make none.
			if started {
				if keepData {
					m.Data = data.Bytes()
				}
				if !fn(m) {
					return nil
				}
			}
			m, started = sseMessage{}, false
			data.Reset()
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			m.ID, _ = strconv.ParseInt(string(value), 10, 64)
			started = true
		case "event":
			m.Event = string(value)
			started = true
		case "data":
			started = true
			m.DataBytes += len(value)
			if keepData {
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			}
			// The rest of a line longer than the buffer is data too.
			for long {
				line, err = br.ReadSlice('\n')
				long = errors.Is(err, bufio.ErrBufferFull)
				if err != nil && !long {
					return err
				}
				rest := trimEOL(line)
				m.DataBytes += len(rest)
				if keepData {
					data.Write(rest)
				}
			}
		default:
			// A comment (": heartbeat") or retry:; a long one is skipped.
			for long {
				_, err = br.ReadSlice('\n')
				long = errors.Is(err, bufio.ErrBufferFull)
				if err != nil && !long {
					return err
				}
			}
		}
	}
}

// trimEOL cuts the line ending (\n, \r\n or \r\r\n...) off line. It is
// bytes.TrimRight(line, "\r\n") without building a cutset at every line,
// which showed in the generator's profile.
func trimEOL(line []byte) []byte {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	return line
}

// streamCounter drains live-update streams and counts what they carried.
type streamCounter struct {
	messages, bytes, dropped atomic.Int64
}

// drain follows a stream as a browser's EventSource does: when the server
// ends it (the broker drops a stream that falls behind), it reconnects
// after the retry delay with Last-Event-ID, and the drop is counted.
func (s *streamCounter) drain(ctx context.Context, client *http.Client, u, cookie string) {
	var last int64
	for ctx.Err() == nil {
		resp, err := openStream(ctx, client, u, cookie, last)
		if err == nil {
			_ = readStream(resp.Body, false, func(m sseMessage) bool {
				s.messages.Add(1)
				s.bytes.Add(int64(m.DataBytes))
				last = max(last, m.ID)
				return true
			})
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return
		}
		s.dropped.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}
