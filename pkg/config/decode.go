package config

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// decoder walks the generic tree of a YAML document, converting values to
// the types expected and collecting every problem with its path.
type decoder struct {
	errs v1.ErrorList
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("a string (%q)", t)
	case json.Number:
		return fmt.Sprintf("a number (%s)", t)
	case bool:
		return fmt.Sprintf("a boolean (%v)", t)
	case []any:
		return fmt.Sprintf("a list of %d items", len(t))
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

func (d *decoder) typeErr(path, want string, v any) {
	d.errs.Add(path, "expected %s, found %s", want, describe(v))
}

// object decodes a mapping, calling fields[key] for each known key and
// reporting unknown keys. Keys are visited in sorted order so errors are
// stable.
func (d *decoder) object(path string, v any, fields map[string]func(path string, v any)) {
	m, ok := v.(map[string]any)
	if !ok {
		d.typeErr(path, "a mapping", v)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, known := fields[k]
		if !known {
			d.errs.Add(join(path, k), "unknown key (expected one of %s)", strings.Join(sortedKeys(fields), ", "))
			continue
		}
		f(join(path, k), m[k])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (d *decoder) str(dst *string) func(string, any) {
	return func(path string, v any) {
		if s, ok := v.(string); ok {
			*dst = s
			return
		}
		d.typeErr(path, "a string", v)
	}
}

// nullableStr accepts a string or null (null leaves "").
func (d *decoder) nullableStr(dst *string) func(string, any) {
	return func(path string, v any) {
		switch s := v.(type) {
		case nil:
			*dst = ""
		case string:
			*dst = s
		default:
			d.typeErr(path, "a string or null", v)
		}
	}
}

// scalarStr accepts a string, number or boolean and keeps its text (YAML
// option values such as `o: 4` are strings to Docker).
func (d *decoder) scalarStr(path string, v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case json.Number:
		return s.String(), true
	case bool:
		return strconv.FormatBool(s), true
	}
	d.typeErr(path, "a string", v)
	return "", false
}

func (d *decoder) integer(dst *int) func(string, any) {
	return func(path string, v any) {
		n, ok := v.(json.Number)
		if !ok {
			d.typeErr(path, "an integer", v)
			return
		}
		i, err := strconv.ParseInt(n.String(), 10, 32)
		if err != nil {
			d.typeErr(path, "an integer", v)
			return
		}
		*dst = int(i)
	}
}

func (d *decoder) optInteger(dst **int) func(string, any) {
	return func(path string, v any) {
		var i int
		before := len(d.errs)
		d.integer(&i)(path, v)
		if len(d.errs) == before {
			*dst = &i
		}
	}
}

func (d *decoder) number(path string, v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		d.typeErr(path, "a number", v)
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		d.typeErr(path, "a finite number", v)
		return 0, false
	}
	return f, true
}

func (d *decoder) float(dst *float64) func(string, any) {
	return func(path string, v any) {
		if f, ok := d.number(path, v); ok {
			*dst = f
		}
	}
}

func (d *decoder) seconds(dst *v1.Duration) func(string, any) {
	return func(path string, v any) {
		f, ok := d.number(path, v)
		if !ok {
			return
		}
		if math.Abs(f) > 1e8 {
			d.errs.Add(path, "%v seconds is out of range", f)
			return
		}
		*dst = v1.Seconds(f)
	}
}

func (d *decoder) boolean(dst **bool) func(string, any) {
	return func(path string, v any) {
		b, ok := v.(bool)
		if !ok {
			d.typeErr(path, "true or false", v)
			return
		}
		*dst = &b
	}
}

func (d *decoder) strList(dst *[]string) func(string, any) {
	return func(path string, v any) {
		l, ok := v.([]any)
		if !ok {
			d.typeErr(path, "a list of strings", v)
			return
		}
		out := make([]string, 0, len(l))
		for i, item := range l {
			s, ok := item.(string)
			if !ok {
				d.typeErr(fmt.Sprintf("%s[%d]", path, i), "a string", item)
				continue
			}
			out = append(out, s)
		}
		*dst = out
	}
}

func (d *decoder) strMap(dst *map[string]string) func(string, any) {
	return func(path string, v any) {
		if v == nil {
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			d.typeErr(path, "a mapping of strings", v)
			return
		}
		out := make(map[string]string, len(m))
		for _, k := range sortedKeys(m) {
			if s, ok := d.scalarStr(join(path, k), m[k]); ok {
				out[k] = s
			}
		}
		*dst = out
	}
}

func ignore(string, any) {}
