package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/caarlos0/env/v11"
)

// ErrHelp and ErrVersion tell the caller that --help or --version was asked
// for; Load has already printed the answer.
var (
	ErrHelp    = errors.New("help requested")
	ErrVersion = errors.New("version requested")
)

// Load builds the configuration from environ (KEY=VALUE strings, as from
// os.Environ) and the command-line args; a flag wins over its variable. The
// returned error, unless ErrHelp or ErrVersion, holds one line per bad value.
func Load(args, environ []string, out io.Writer, version string) (*Config, error) {
	fields, err := describe()
	if err != nil {
		return nil, err
	}
	defaults := platformDefaults(environMap(environ))
	overrides, err := parseFlags(args, fields, defaults, out, version)
	if err != nil {
		return nil, err
	}
	vars, err := gatherVars(environ, overrides, fields, defaults)
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return nil, explain(err, fields, vars)
	}
	_, cfg.adminAddressSet = vars["ADMIN_ADDRESS"]
	cfg.unknownEnv = unknownVars(environ, fields)
	cfg.CertHostnames = tidyList(cfg.CertHostnames)
	cfg.RouteAllow = tidyList(cfg.RouteAllow)
	cfg.RouteCheck = tidyList(cfg.RouteCheck)
	cfg.AllowedOrigins = tidyList(cfg.AllowedOrigins)
	cfg.AuthRequiredClaims = tidyList(cfg.AuthRequiredClaims)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// parseFlags reads the command line: each setting's flag, as the variable
// it overrides, or --help and --version (ErrHelp, ErrVersion).
func parseFlags(args []string, fields []field, defaults map[string]string, out io.Writer, version string) (map[string]string, error) {
	overrides := map[string]string{}
	fs := flag.NewFlagSet("cloudxr-wss-proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Usage is ours; parse errors are returned.
	for _, f := range fields {
		fs.Var(&flagValue{key: f.key, isBool: f.isBool, into: overrides}, f.flag, f.help)
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(out, fields, defaults)
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("%w (see --help)", err)
	}
	if *showVersion {
		fmt.Fprintf(out, "cloudxr-wss-proxy %s\n", version)
		return nil, ErrVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (settings are flags such as --backend-host=HOST, or variables; see --help)", fs.Arg(0))
	}
	return overrides, nil
}

// gatherVars is every setting's text, the first of: a flag, the
// environment, ENV_FILE, the platform's default (defaults).
func gatherVars(environ []string, overrides map[string]string, fields []field, defaults map[string]string) (map[string]string, error) {
	vars := environMap(environ)
	for k, v := range overrides {
		vars[k] = v
	}
	if path := vars["ENV_FILE"]; path != "" {
		fromFile, err := readEnvFile(path, fields)
		if err != nil {
			return nil, err
		}
		for k, v := range fromFile {
			if _, set := vars[k]; !set {
				vars[k] = v // the environment and the flags win
			}
		}
	}
	for k, v := range defaults {
		if _, set := vars[k]; !set {
			vars[k] = v
		}
	}
	return vars, nil
}

// environMap reads KEY=VALUE strings, as from os.Environ.
func environMap(environ []string) map[string]string {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

// field describes one setting for flags, help and error messages.
type field struct {
	name, key, flag, help, def string
	isBool                     bool
	secret                     bool // never logged: Effective says only whether it is set
}

func describe() ([]field, error) {
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		return nil, err
	}
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, len(params))
	for _, p := range params {
		sf, ok := fieldByKey(t, p.OwnKey)
		if !ok {
			return nil, fmt.Errorf("config: no field for %s", p.OwnKey)
		}
		out = append(out, field{
			name:   sf.Name,
			key:    p.Key,
			flag:   strings.ToLower(strings.ReplaceAll(p.Key, "_", "-")),
			help:   sf.Tag.Get("help"),
			def:    p.DefaultValue,
			isBool: sf.Type.Kind() == reflect.Bool,
			secret: sf.Tag.Get("secret") == "true",
		})
	}
	return out, nil
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if name, _, _ := strings.Cut(sf.Tag.Get("env"), ","); name == key {
			return sf, true
		}
	}
	return reflect.StructField{}, false
}

// explain rewrites the env library's errors, which name Go struct fields,
// into lines that name the variable and the value the user gave.
func explain(err error, fields []field, vars map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	var lines []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			lines = append(lines, e)
			continue
		}
		for _, f := range fields {
			if f.name != pe.Name {
				continue
			}
			why := pe.Err.Error()
			switch pe.Type.Kind() {
			case reflect.Int:
				why = "want a whole number"
			case reflect.Bool:
				why = "want true or false"
			}
			lines = append(lines, fmt.Errorf("invalid %s=%q: %s", f.key, vars[f.key], why))
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].Error() < lines[j].Error() })
	return errors.Join(lines...)
}

func tidyList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func usage(out io.Writer, fields []field, defaults map[string]string) {
	fmt.Fprint(out, `cloudxr-wss-proxy terminates TLS for CloudXR.js: browsers and headsets open
wss://HOST:48322/ and their WebSocket signaling is passed byte for byte to the
CloudXR Runtime (ws://localhost:49100 by default).

Usage: cloudxr-wss-proxy [flags]
       cloudxr-wss-proxy healthcheck [flags]   (exit 0 if the proxy on PROXY_PORT
                                                 answers GET /status.json, else 1:
                                                 the container image's HEALTHCHECK)

Every setting is an environment variable (the names of the HAProxy container)
and a flag; a flag wins over its variable, and both over the settings file
(--env-file).

`)
	for _, f := range fields {
		arg := " VALUE"
		if f.isBool {
			arg = "[=true|false]"
		}
		def := f.def
		if d, ok := defaults[f.key]; ok {
			def = d
		}
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(out, "  --%s%s   (%s, default %s)\n      %s\n", f.flag, arg, f.key, def, f.help)
	}
	fmt.Fprint(out, "  --version\n      print the version and exit\n")
}

// flagValue records a flag's text under its variable name, so that flags and
// variables go through one parser and one set of error messages.
type flagValue struct {
	key    string
	isBool bool
	into   map[string]string
}

func (v *flagValue) String() string   { return "" }
func (v *flagValue) IsBoolFlag() bool { return v.isBool }
func (v *flagValue) Set(s string) error {
	v.into[v.key] = s
	return nil
}

// Setting is one effective setting, by variable name, for the start-up log.
type Setting struct{ Key, Value string }

// Effective lists every setting with its value, in declaration order.
func (c *Config) Effective() []Setting {
	fields, err := describe()
	if err != nil {
		return nil
	}
	v := reflect.ValueOf(c).Elem()
	out := make([]Setting, 0, len(fields))
	for _, f := range fields {
		fv := v.FieldByName(f.name)
		val := fmt.Sprint(fv.Interface())
		if fv.Kind() == reflect.Slice {
			val = strings.Join(fv.Interface().([]string), ",")
		}
		if f.secret && val != "" {
			val = "(set)"
		}
		out = append(out, Setting{f.key, val})
	}
	return out
}

// Default is one setting's variable and its default on this system ("" for
// none), as --help shows it.
type Default struct{ Key, Value string }

// Defaults lists every setting in the struct's order with its default on this
// system for a process given environ (KEY=VALUE strings): the struct's tag,
// or platformDefaults where that differs. The documents' configuration
// reference is checked against it.
func Defaults(environ []string) ([]Default, error) {
	fields, err := describe()
	if err != nil {
		return nil, err
	}
	out := make([]Default, 0, len(fields))
	for _, f := range fields {
		d := f.def
		if p, ok := platformDefaults(environMap(environ))[f.key]; ok {
			d = p
		}
		out = append(out, Default{Key: f.key, Value: d})
	}
	return out, nil
}
