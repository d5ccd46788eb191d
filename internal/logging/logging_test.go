package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFormats(t *testing.T) {
	// Not a terminal: auto means JSON, what a container's log collector wants.
	for _, format := range []string{"auto", "json"} {
		var buf bytes.Buffer
		log, err := New(&buf, "info", format)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("session ended", zap.Duration("duration", 1500*time.Millisecond), zap.Int("status", 101))
		log.Debug("below the level")
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%s: not one JSON line: %q", format, buf.String())
		}
		if line["msg"] != "session ended" || line["level"] != "info" || line["duration"] != "1.5s" || line["time"] == nil {
			t.Errorf("%s: %v", format, line)
		}
	}
	var buf bytes.Buffer
	log, err := New(&buf, "debug", "console")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("backend is up", zap.String("backend", "localhost:49100"))
	if out := buf.String(); !strings.Contains(out, "DEBUG\tbackend is up") || !strings.Contains(out, `"backend": "localhost:49100"`) {
		t.Errorf("console line %q", out)
	}
}

func TestBadSettings(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "loud", "json"); err == nil || !strings.Contains(err.Error(), "log level") {
		t.Errorf("bad level: %v", err)
	}
	if _, err := New(&bytes.Buffer{}, "info", "xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("bad format: %v", err)
	}
}
