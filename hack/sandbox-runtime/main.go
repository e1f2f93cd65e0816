// Command sandbox-runtime is the OCI runtime the test bed's Docker Engines
// use instead of plain runc. It exists only because the test machine's
// capability bounding set lacks CAP_SYS_RESOURCE: a privileged container asks
// for every capability, and runc then fails with "unable to apply caps:
// operation not permitted".
//
// For `create` and `run` it finds the bundle (`--bundle DIR`, `-b DIR`, or the
// current directory when none is given) and removes CAP_SYS_RESOURCE from
// every capability list of process.capabilities in DIR/config.json. For
// `exec` it does the same to the process file (`--process FILE` / `-p FILE`),
// because Docker hands a privileged exec the full capability set too. Then it
// execs runc with exactly the arguments it was given. Every other subcommand
// goes straight through to runc.
//
// It is registered with `dockerd --add-runtime sandbox=<path>
// --default-runtime sandbox`. Production engines do not need it, and
// fliswarm itself always asks for privileged containers as configured.
//
// runc is looked up in PATH, then in /usr/sbin and /usr/bin; the environment
// variable SANDBOX_RUNC names another binary.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// dropped is the capability the test machine cannot grant.
const dropped = "CAP_SYS_RESOURCE"

// capLists are the capability lists of an OCI process object.
var capLists = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// globalValueFlags are runc's global flags that take a separate value.
var globalValueFlags = map[string]bool{
	"--log": true, "--log-format": true, "--root": true, "--criu": true, "--rootless": true,
}

func main() {
	runc, err := findRunc()
	if err != nil {
		fail(err)
	}
	args := os.Args[1:]
	if err := rewrite(args); err != nil {
		fail(err)
	}
	argv := append([]string{runc}, args...)
	if err := syscall.Exec(runc, argv, os.Environ()); err != nil {
		fail(fmt.Errorf("exec %s: %w", runc, err))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "sandbox-runtime: %v\n", err)
	os.Exit(1)
}

func findRunc() (string, error) {
	if p := os.Getenv("SANDBOX_RUNC"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("runc"); err == nil {
		return filepath.Abs(p)
	}
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("runc not found in PATH, /usr/sbin or /usr/bin (set SANDBOX_RUNC)")
}

// rewrite edits the file the runc invocation in args will read, if any.
func rewrite(args []string) error {
	sub, rest := subcommand(args)
	switch sub {
	case "create", "run":
		bundle, ok := flagValue(rest, "--bundle", "-b")
		if !ok {
			bundle = "."
		}
		return editFile(filepath.Join(bundle, "config.json"), func(doc map[string]any) {
			if proc, ok := doc["process"].(map[string]any); ok {
				dropCap(proc)
			}
		})
	case "exec":
		file, ok := flagValue(rest, "--process", "-p")
		if !ok {
			return nil // the process comes from the command line, with no capability lists
		}
		return editFile(file, dropCap)
	}
	return nil
}

// subcommand returns runc's subcommand and the arguments after it, skipping
// the global flags before it.
func subcommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, args[i+1:]
		}
		if a == "--" {
			if i+1 < len(args) {
				return args[i+1], args[i+2:]
			}
			return "", nil
		}
		if globalValueFlags[a] {
			i++ // skip the value
		}
	}
	return "", nil
}

// flagValue finds a flag given as "--long V", "--long=V", "-s V" or "-s=V".
func flagValue(args []string, long, short string) (string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, name := range []string{long, short} {
			if a == name && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// editFile decodes a JSON object, applies edit to it and writes it back in
// place, keeping numbers exactly as written.
func editFile(path string, edit func(map[string]any)) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	edit(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if err := os.WriteFile(path, out, st.Mode().Perm()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// dropCap removes the dropped capability from every capability list of an
// OCI process object.
func dropCap(proc map[string]any) {
	caps, ok := proc["capabilities"].(map[string]any)
	if !ok {
		return
	}
	for _, name := range capLists {
		list, ok := caps[name].([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			if s, ok := c.(string); ok && s == dropped {
				continue
			}
			kept = append(kept, c)
		}
		caps[name] = kept
	}
}
