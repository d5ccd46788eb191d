package config

import (
	"fmt"
	"os"

	"github.com/joho/godotenv"
)

// The settings file (ENV_FILE, --env-file): the KEY=value lines of the
// systemd unit's EnvironmentFile, for programs started without a shell's
// environment, as a Windows service is. The environment wins over the
// file, and a flag over both.

// readEnvFile reads the settings file at path. Every key must be a
// setting: the file is this program's alone, so a name it does not know
// is a typo, refused with the line naming it rather than ignored.
func readEnvFile(path string, fields []field) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ENV_FILE: %w", err)
	}
	defer f.Close()
	vars, err := godotenv.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("ENV_FILE %s: %w", path, err)
	}
	known := map[string]bool{}
	for _, fd := range fields {
		known[fd.key] = true
	}
	for k := range vars {
		if !known[k] || k == "ENV_FILE" {
			return nil, fmt.Errorf("ENV_FILE %s: %q is not a setting (see --help)", path, k)
		}
	}
	return vars, nil
}
