package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// Marshal writes one object as YAML, without the status the server owns:
// the same object gives the same bytes (fields in their order, map keys
// sorted, no timestamps).
func Marshal(o Object) ([]byte, error) {
	b, err := json.Marshal(o.Obj)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // 6442450944 stays an integer
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
	}
	delete(m, "status")
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
	}
	return out, nil
}

// MarshalAll writes the objects as one multi-document YAML stream.
func MarshalAll(objs []Object) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := Marshal(o)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
