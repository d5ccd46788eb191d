package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// What `service start` says when the Windows service does not come up:
// in words, with the last line the service wrote to its log file (the
// file has every line; Wine's Event Log is a stub, and a start that fails
// on a setting ends before the Event Log has anything to say).

// serviceEndedMsg marks the line the service writes when the proxy ends
// with an error, the error in its "error" field.
const serviceEndedMsg = "the service stopped"

// lastLogWords is the last line of a JSON log, as words: its message and
// its error, or the line as it is when it is not JSON. Empty when the log
// has no line.
func lastLogWords(log []byte) string {
	log = bytes.TrimRight(log, "\r\n")
	if i := bytes.LastIndexByte(log, '\n'); i >= 0 {
		log = log[i+1:]
	}
	line := string(bytes.TrimSpace(log))
	var rec struct{ Msg, Error string }
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg == "" {
		return line
	}
	switch {
	case rec.Error == "":
		return rec.Msg
	case rec.Msg == serviceEndedMsg:
		return rec.Error
	}
	return rec.Msg + ": " + rec.Error
}

// startFailure says why `service start` gave up: the service stopped
// while starting (stopped), or is still starting after limit; logFile is
// where the whole log is, last its last line in words.
func startFailure(name string, stopped bool, limit time.Duration, logFile, last string) error {
	what := fmt.Sprintf("the %s service did not start within %d s", name, int(limit.Round(time.Second).Seconds()))
	if stopped {
		what = fmt.Sprintf("the %s service stopped as it started", name)
	}
	if last == "" {
		return fmt.Errorf("%s, and logged nothing (see %s and the Application event log)", what, logFile)
	}
	return fmt.Errorf("%s: %s (the whole log: %s)", what, last, logFile)
}
