package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/config"
)

// Options say what to load.
type Options struct {
	// Path of the configuration file; empty means the embedded default.
	Path string
	// Nodes, when not nil, replace the enabled nodes (the --nodes flag).
	Nodes []string
	// Observatory overrides $OBSERVATORY when not empty.
	Observatory string
}

// Loaded is a configuration read, defaulted and validated.
type Loaded struct {
	// Spec is the desired state.
	Spec *v1.Swarm
	// Source is the file read, or "embedded default".
	Source string
	// Layout is "flat" or "per-observatory".
	Layout string
	// Revision identifies the effective spec: a short hash that changes
	// whenever anything in it does.
	Revision string
	// Warnings are problems that did not stop the load (an unset
	// OBSERVATORY, for instance).
	Warnings []string
	// Paths locate the node sections in the file, for messages.
	Paths v1.Paths
}

// Load reads the configuration named by opts.
func Load(opts Options) (*Loaded, error) {
	data := config.Default
	source := "embedded default"
	if opts.Path != "" {
		b, err := os.ReadFile(opts.Path)
		if err != nil {
			return nil, fmt.Errorf("reading configuration: %w", err)
		}
		data, source = b, opts.Path
	}
	obs, warnings := observatory(opts.Observatory)
	l, err := Parse(data, obs, opts.Nodes)
	if err != nil {
		return nil, &Error{Source: source, Err: err}
	}
	if errs := CheckFiles(l.Spec, l.Paths); len(errs) > 0 {
		return nil, &Error{Source: source, Err: errs}
	}
	l.Source = source
	l.Warnings = append(warnings, l.Warnings...)
	return l, nil
}

// Error is a configuration that cannot be accepted.
type Error struct {
	Source string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid configuration %s:\n%s", e.Source, indent(e.Err.Error()))
}

func (e *Error) Unwrap() error { return e.Err }

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func observatory(override string) (string, []string) {
	if override != "" {
		return strings.ToUpper(override), nil
	}
	if v, ok := v1.ObservatoryFromEnv(); ok {
		return strings.ToUpper(v), nil
	}
	return "", nil
}

// Parse reads a configuration document. obs is the observatory ("" when
// $OBSERVATORY is unset); nodes, when not nil, replace the enabled nodes.
func Parse(data []byte, obs string, nodes []string) (*Loaded, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, v1.ErrorList{{Path: "(file)", Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")}}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, v1.ErrorList{{Path: "(file)", Message: "not valid YAML: " + err.Error()}}
	}
	if root == nil {
		return nil, v1.ErrorList{{Path: "(file)", Message: "is empty"}}
	}
	m, ok := root.(map[string]any)
	if !ok {
		return nil, v1.ErrorList{{Path: "(file)", Message: "expected a mapping of configuration keys, found " + describe(root)}}
	}

	d := &decoder{}
	s := &v1.Swarm{}
	l := &Loaded{Spec: s, Layout: "flat"}
	paths := v1.DefaultPaths

	perObs := isPerObservatory(m)
	fileObs := ""
	if o, ok := m["observatory"].(string); ok {
		fileObs = strings.ToUpper(o)
	}
	switch {
	case obs != "":
	case fileObs != "":
		obs = fileObs
	default:
		obs = v1.DefaultObservatory
		l.Warnings = append(l.Warnings, "OBSERVATORY is not set: assuming APO")
	}
	s.Observatory = obs
	if perObs {
		l.Layout = "per-observatory"
		paths = v1.Paths{Nodes: "nodes." + obs, EnabledNodes: "enabled_nodes." + obs}
	}

	var enabledSet, nodesSet, httpSet bool
	fields := map[string]func(string, any){
		"actor":                 func(p string, v any) { d.actor(p, v, &s.Actor) },
		"registry":              d.nullableStr(&s.Registry),
		"image":                 d.str(&s.Image),
		"container_name":        d.str(&s.ContainerName),
		"ping_timeout":          d.seconds(&s.PingTimeout),
		"observatory":           func(p string, v any) { d.observatory(p, v) },
		"resources":             func(p string, v any) { d.resources(p, v, &s.Resources) },
		"privileged":            d.boolean(&s.Privileged),
		"network_mode":          d.str(&s.NetworkMode),
		"devices":               d.strList(&s.Devices),
		"env":                   d.strMap(&s.Env),
		"pull_policy":           func(p string, v any) { var x string; d.str(&x)(p, v); s.PullPolicy = v1.PullPolicy(x) },
		"restart_policy":        d.str(&s.RestartPolicy),
		"resync_interval":       d.seconds(&s.ResyncInterval),
		"max_unavailable":       d.integer(&s.MaxUnavailable),
		"command_timeout":       d.seconds(&s.CommandTimeout),
		"ready_timeout":         d.seconds(&s.ReadyTimeout),
		"update_wait":           d.seconds(&s.UpdateWait),
		"image_update_interval": d.seconds(&s.ImageUpdateInterval),
		"pull_stall_timeout":    d.seconds(&s.PullStallTimeout),
		"image_gc": func(p string, v any) {
			d.object(p, v, map[string]func(string, any){
				"keep": d.optInteger(&s.ImageGC.Keep), "high_percent": d.optInteger(&s.ImageGC.HighPercent),
			})
		},
		"status_interval": d.seconds(&s.StatusInterval),
		"events_per_node": d.integer(&s.EventsPerNode),
		"reboot_command":  d.str(&s.RebootCommand),
		"http":            func(p string, v any) { httpSet = true; d.nullableStr(&s.HTTP)(p, v) },
		"power":           func(p string, v any) { s.Power = &v1.Power{}; d.power(p, v, s.Power) },
		"tls":             d.tls(&s.TLS),
		"ssh":             d.ssh(&s.SSH),
		"registry_auth":   d.registryAuth(&s.RegistryAuth),
		"volumes":         func(p string, v any) { d.volumes(p, v, &s.Volumes) },
		"enabled_nodes": func(p string, v any) {
			enabledSet = true
			if perObs {
				d.perObservatory(p, v, obs, func(p string, v any) { d.strList(&s.EnabledNodes)(p, v) })
			} else {
				d.strList(&s.EnabledNodes)(p, v)
			}
		},
		"nodes": func(p string, v any) {
			nodesSet = true
			if perObs {
				d.perObservatory(p, v, obs, func(p string, v any) { d.nodes(p, v, &s.Nodes) })
			} else {
				d.nodes(p, v, &s.Nodes)
			}
		},
	}
	d.object("", root, fields)
	if !nodesSet {
		d.errs.Add("nodes", "is required")
	}
	if !enabledSet && nodes == nil {
		d.errs.Add("enabled_nodes", "is required")
	}
	if nodes != nil {
		s.EnabledNodes = append([]string{}, nodes...)
		paths.EnabledNodes = "--nodes"
	}
	if !httpSet {
		s.HTTP = v1.DefaultHTTP // absent: on, loopback only; null: off
	}
	s.SetDefaults()
	// Type errors first; semantic checks on fields that failed to decode
	// would only repeat them.
	d.errs = append(d.errs, s.Validate(paths)...)
	if err := dedupe(d.errs).Err(); err != nil {
		return nil, err
	}
	l.Revision, l.Paths = Revision(s), paths
	return l, nil
}

// dedupe drops repeated problems at the same path (a type error and the
// check of the zero value left behind).
func dedupe(errs v1.ErrorList) v1.ErrorList {
	seen := map[string]bool{}
	var out v1.ErrorList
	for _, e := range errs {
		if seen[e.Path] {
			continue
		}
		seen[e.Path] = true
		out = append(out, e)
	}
	return out
}

// isPerObservatory tells the layouts apart: in the per-observatory layout
// enabled_nodes is a mapping, and nodes is keyed by APO/LCO.
func isPerObservatory(m map[string]any) bool {
	if _, ok := m["enabled_nodes"].(map[string]any); ok {
		return true
	}
	if _, isList := m["enabled_nodes"].([]any); isList {
		return false
	}
	nodes, ok := m["nodes"].(map[string]any)
	if !ok || len(nodes) == 0 {
		return false
	}
	for k := range nodes {
		if k != "APO" && k != "LCO" {
			return false
		}
	}
	return true
}

func (d *decoder) perObservatory(path string, v any, obs string, f func(string, any)) {
	m, ok := v.(map[string]any)
	if !ok {
		d.typeErr(path, "a mapping keyed by observatory (APO, LCO)", v)
		return
	}
	for _, k := range sortedKeys(m) {
		if k != "APO" && k != "LCO" {
			d.errs.Add(join(path, k), "unknown observatory (expected APO or LCO)")
		}
	}
	sec, ok := m[obs]
	if !ok {
		d.errs.Add(path, "has no section for observatory %s", obs)
		return
	}
	f(join(path, obs), sec)
	// The other observatory's section is type-checked too, so a typo is
	// found before the night it is needed; its values are discarded.
	for _, k := range sortedKeys(m) {
		if k != obs && (k == "APO" || k == "LCO") {
			scratch := &decoder{}
			var sl []string
			var sn map[string]v1.Node
			if strings.HasPrefix(path, "enabled_nodes") {
				scratch.strList(&sl)(join(path, k), m[k])
			} else {
				scratch.nodes(join(path, k), m[k], &sn)
			}
			d.errs = append(d.errs, scratch.errs...)
		}
	}
}

func (d *decoder) observatory(path string, v any) {
	s, ok := v.(string)
	if !ok {
		d.typeErr(path, "APO or LCO", v)
		return
	}
	if u := strings.ToUpper(s); u != "APO" && u != "LCO" {
		d.errs.Add(path, "expected APO or LCO, found %q", s)
	}
}

func (d *decoder) actor(path string, v any, a *v1.Actor) {
	d.object(path, v, map[string]func(string, any){
		"name":            d.str(&a.Name),
		"host":            d.str(&a.Host),
		"port":            d.integer(&a.Port),
		"tron_host":       d.nullableStr(&a.TronHost),
		"tron_port":       d.integer(&a.TronPort),
		"allow":           d.strList(&a.Allow),
		"max_users":       d.integer(&a.MaxUsers),
		"max_line_length": d.integer(&a.MaxLineLength),
		"stall_timeout":   d.seconds(&a.StallTimeout),
		"max_backlog":     d.integer(&a.MaxBacklog),
		"log_dir": func(p string, v any) {
			switch t := v.(type) {
			case string:
				a.LogDir = t
			case bool:
				if t {
					d.errs.Add(p, "expected a directory or false, found true")
				}
				a.LogDir = ""
			case nil:
				a.LogDir = ""
			default:
				d.typeErr(p, "a directory or false", v)
			}
		},
		"additional_properties": ignore,
	})
}

func (d *decoder) resources(path string, v any, r *v1.Resources) {
	d.object(path, v, map[string]func(string, any){
		"cpus": d.float(&r.CPUs),
		"memory": func(p string, v any) {
			if s, ok := d.scalarStr(p, v); ok {
				r.Memory = s
			}
		},
	})
}

func (d *decoder) power(path string, v any, pw *v1.Power) {
	d.object(path, v, map[string]func(string, any){
		"actor": d.str(&pw.Actor),
		"command": func(p string, v any) {
			d.object(p, v, map[string]func(string, any){
				"poweron":  d.str(&pw.Command.PowerOn),
				"poweroff": d.str(&pw.Command.PowerOff),
			})
		},
	})
}

func (d *decoder) volumes(path string, v any, dst *map[string]v1.Volume) {
	if v == nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.typeErr(path, "a mapping of volume name to {driver, opts}", v)
		return
	}
	out := map[string]v1.Volume{}
	for _, name := range sortedKeys(m) {
		var vol v1.Volume
		d.object(join(path, name), m[name], map[string]func(string, any){
			"driver": d.str(&vol.Driver),
			"opts":   d.strMap(&vol.Opts),
		})
		out[name] = vol
	}
	*dst = out
}

func (d *decoder) nodes(path string, v any, dst *map[string]v1.Node) {
	m, ok := v.(map[string]any)
	if !ok {
		d.typeErr(path, "a mapping of node name to {host, port, docker-client, category}", v)
		return
	}
	out := map[string]v1.Node{}
	for _, name := range sortedKeys(m) {
		var n v1.Node
		d.object(join(path, name), m[name], map[string]func(string, any){
			"host":                d.str(&n.Host),
			"port":                d.integer(&n.Port),
			"docker-client":       d.str(&n.DockerClient),
			"category":            d.str(&n.Category),
			"user":                d.str(&n.User),
			"docker-uid":          d.optInteger(&n.DockerUID),
			"docker-gid":          d.optInteger(&n.DockerGID),
			"env":                 d.strMap(&n.Env),
			"kubernetes_hostname": d.str(&n.KubernetesHostname),
			"tls":                 d.tls(&n.TLS),
			"ssh":                 d.ssh(&n.SSH),
			"power": func(p string, v any) {
				n.Power = &v1.NodePower{}
				d.object(p, v, map[string]func(string, any){"device": d.str(&n.Power.Device)})
			},
		})
		out[name] = n
	}
	*dst = out
}
