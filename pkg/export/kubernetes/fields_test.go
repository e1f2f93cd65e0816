package kubernetes

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// configPaths walks t and returns the configuration path of every leaf
// field: structs (also behind pointers and as map values) are entered,
// anything else is a leaf. Map keys are "*"; a field the file cannot set
// (json:"-") goes by its Go name.
func configPaths(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "-" || name == "" {
			name = f.Name
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			configPaths(ft, path, out)
		case ft.Kind() == reflect.Map && structLike(ft.Elem()):
			configPaths(ft.Elem(), path+".*", out)
		default:
			out[path] = true
		}
	}
}

func structLike(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// TestEveryFieldHasAFate fails when a field reachable from v1.Swarm is
// missing from Fields (a new setting must say what the export does with
// it), or when Fields names a field that no longer exists.
func TestEveryFieldHasAFate(t *testing.T) {
	paths := map[string]bool{}
	configPaths(reflect.TypeOf(v1.Swarm{}), "", paths)
	if len(paths) < 50 {
		t.Fatalf("walked only %d fields; the walk is broken", len(paths))
	}
	var missing, stale []string
	for p := range paths {
		if _, ok := Fields[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p, f := range Fields {
		if !paths[p] {
			stale = append(stale, p)
		}
		if f.Note == "" || (f.Fate != Mapped && f.Fate != NotApplicable && f.Fate != Refused) {
			t.Errorf("Fields[%q] = %+v: needs a fate and a note", p, f)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, p := range missing {
		t.Errorf("field %s has no row in Fields: say whether export kubernetes maps it, why it does not apply, or when it is refused", p)
	}
	for _, p := range stale {
		t.Errorf("Fields has a row for %s, which is no field of v1.Swarm", p)
	}
}
