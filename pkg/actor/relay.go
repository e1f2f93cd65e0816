package actor

import (
	"strings"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// line is one reply line fliswarm writes upstream: a message code and its
// keywords. Where it goes (the commanding user or a broadcast) is the
// caller's business.
type line struct {
	Code     opscore.Code
	Keywords []opscore.Keyword
}

// helpKey is the keyword a camera uses for its usage text.
const helpKey = "help"

// rawSubstitute is the name a camera keyword called `raw` (in any case) is
// relayed under: opscore parsers read `raw=` as the start of a raw-text
// keyword taking the rest of the line, and reject a reply keyword so named.
const rawSubstitute = "camRaw"

// safeName returns the keyword name a camera keyword is relayed under:
// its own, except rawSubstitute for the reserved `raw`.
func safeName(name string) string {
	if strings.EqualFold(name, "raw") {
		return rawSubstitute
	}
	return name
}

// relayLines translates one device reply into the upstream lines that relay it,
// in the order they are to be written:
//
//   - Every data key becomes a keyword of the same name (`raw`, reserved
//     in opscore, becomes rawSubstitute), in the reply's key order, whose values are the sender (the node name) followed by the
//     device's value: a scalar v gives [sender, v], a list [a, b] gives
//     [sender, a, b], an object gives [sender, object] (the opscore encoder
//     flattens the object one level).
//   - All keywords but help go on one line; then each value of a help
//     keyword gets a line of its own, help=[sender, value], because help
//     text is read one line per entry.
//   - Every line has the code relayCode(r.Header.MessageCode).
//
// A reply with no data yields no line (like the `>` that starts every
// device command): it only matters for the device command's state, which
// the caller tracks with the original code.
func relayLines(r clu.Reply) []line {
	code := relayCode(r.Header.MessageCode)
	sender := r.Header.Sender

	var lines []line
	var kws []opscore.Keyword
	var help []any
	for _, f := range r.Data {
		if f.Key == helpKey {
			if list, ok := f.Value.([]any); ok {
				help = append(help, list...)
			} else {
				help = append(help, f.Value)
			}
			continue
		}
		kws = append(kws, opscore.Keyword{Name: safeName(f.Key), Values: prependSender(sender, f.Value)})
	}
	if len(kws) > 0 {
		lines = append(lines, line{Code: code, Keywords: kws})
	}
	for _, h := range help {
		lines = append(lines, line{Code: code, Keywords: []opscore.Keyword{{Name: helpKey, Values: []any{sender, h}}}})
	}
	return lines
}

// prependSender returns the keyword values for one device value.
func prependSender(sender string, v any) []any {
	if list, ok := v.([]any); ok {
		out := make([]any, 0, len(list)+1)
		out = append(out, sender)
		return append(out, list...)
	}
	return []any{sender, v}
}

// RelayCode translates a device message code into the code fliswarm
// relays it with, so that no device reply ends or fails fliswarm's own
// command: `>` becomes `d`, `:` becomes `i`, `f`, `e` and `!` become `w`;
// `i`, `d` and `w` pass through. Anything else, which no camera should
// send, is relayed as `w` so that the upstream line stays valid.
//
// `!` is softened like `f`: relaying it would be a terminal code upstream
// and end fliswarm's command in the middle of its replies.
func relayCode(code string) opscore.Code {
	switch code {
	case clu.CodeRunning, clu.CodeDebug:
		return opscore.Debug
	case clu.CodeDone, clu.CodeInfo:
		return opscore.Info
	default: // w, e, f, ! and anything outside the protocol
		return opscore.Warning
	}
}
