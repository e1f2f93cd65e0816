package actor

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// talkArgs is what talk's words say: the selection and the camera command.
type talkArgs struct {
	// Names is the last -n/--names value; "" when none was given.
	Names string
	// Category is the last -c/--category value; "" when none was given.
	Category string
	// Words are the camera command's words, unknown options included.
	Words []string
	// Help is set when --help was given: the caller shows talk's usage.
	Help bool
}

// CameraCommand is the line sent to the cameras: the words joined with
// single spaces, as the original does (a quoted "expose 5" is one word of
// talk but two words of the camera's command).
func (t talkArgs) CameraCommand() string { return strings.Join(t.Words, " ") }

// talkUsageError is a talk command line click would reject; its message
// is click's.
type talkUsageError struct{ msg string }

func (e *talkUsageError) Error() string { return e.msg }

// talkOptions are talk's options that take a value, by every spelling
// click accepts.
var talkOptions = map[string]string{
	"-n": "names", "--names": "names",
	"-c": "category", "--category": "category",
}

// parseTalkArgs parses talk's words (already split like shlex.split) the
// way click parses the original's talk command, a CLU command:
//
//   - options may come anywhere among the words; `--` ends them (the first
//     `--` is dropped, later ones are words); a given option keeps its last
//     value;
//   - a value follows as the next word whatever it looks like (`-n --` names
//     "--"), after `=` for a long option (`--names=gfa1`), or attached to a
//     short one (`-ngfa1`; so `-n=gfa1` names "=gfa1", as in click);
//   - `-` and words not starting with `-` are camera words, and so is any
//     option click does not know (CLU sets ignore_unknown_options), so
//     `expose 5 --count 2` and `set-temperature -10` reach the camera whole;
//     in a group of short options (`-xn gfa1`) the unknown letters are kept
//     as one word (`-x`) after the known ones are taken;
//   - `--help` asks for the usage; an option with no value left, or
//     `--help=...`, is a usage error worded as click words it.
//
// An empty camera command is not an error here (click accepts it).
func parseTalkArgs(args []string) (talkArgs, error) {
	var (
		out    talkArgs
		values = map[string]*string{"names": &out.Names, "category": &out.Category}
		rest   = args
	)
	// take returns the next word, the value of option name.
	take := func(name string) (string, error) {
		if len(rest) == 0 {
			return "", &talkUsageError{fmt.Sprintf("Option '%s' requires an argument.", name)}
		}
		v := rest[0]
		rest = rest[1:]
		return v, nil
	}
	for len(rest) > 0 {
		arg := rest[0]
		rest = rest[1:]
		switch {
		case arg == "--":
			out.Words = append(out.Words, rest...)
			return out, nil
		case len(arg) < 2 || arg[0] != '-':
			out.Words = append(out.Words, arg)
			continue
		}
		if strings.HasPrefix(arg, "--") {
			name, attached, hasValue := strings.Cut(arg, "=")
			dest, known := talkOptions[name]
			switch {
			case known:
				v := attached
				if !hasValue {
					var err error
					if v, err = take(name); err != nil {
						return talkArgs{}, err
					}
				}
				*values[dest] = v
			case name == "--help" && hasValue:
				return talkArgs{}, &talkUsageError{"Option '--help' does not take a value."}
			case name == "--help":
				out.Help = true
			default:
				out.Words = append(out.Words, arg) // an option click does not know
			}
			continue
		}
		// A group of short options: each letter an option, until one that
		// takes a value, which takes the rest of the word or the next word.
		var unknown strings.Builder
		for i := 1; i < len(arg); {
			_, size := utf8.DecodeRuneInString(arg[i:])
			letter, after := arg[i:i+size], arg[i+size:]
			i += size
			dest, ok := talkOptions["-"+letter]
			if !ok {
				unknown.WriteString(letter)
				continue
			}
			v := after
			if v == "" {
				var err error
				if v, err = take("-" + letter); err != nil {
					return talkArgs{}, err
				}
			}
			*values[dest] = v
			break
		}
		if unknown.Len() > 0 {
			out.Words = append(out.Words, "-"+unknown.String())
		}
	}
	return out, nil
}
