package opscore

import (
	"unicode/utf8"
)

// ValidName reports whether name is a keyword name opscore parsers accept
// in a reply: it matches [A-Za-z][A-Za-z0-9_.]* and is not reserved (see
// ReservedName).
func ValidName(name string) bool {
	if name == "" || !isASCIILetter(name[0]) || ReservedName(name) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return false
		}
	}
	return true
}

// ReservedName reports whether name is a keyword name opscore reserves:
// "raw", in any case. opscore parsers read `raw=` as the start of a
// raw-text keyword that takes the rest of the line, and reject a reply
// keyword named raw.
func ReservedName(name string) bool {
	return len(name) == 3 && name[0]|0x20 == 'r' && name[1]|0x20 == 'a' && name[2]|0x20 == 'w'
}

// SafeName returns the keyword name the encoder writes for name, one that
// opscore parsers accept (ValidName is true for it):
//   - every character outside [A-Za-z0-9_.] is replaced by `_`;
//   - a name not starting with an ASCII letter (also an empty one) gets an
//     `x` in front ("9x" becomes "x9x");
//   - a reserved name (see ReservedName: "raw" in any case) gets the same
//     `x` in front, keeping its case: "raw" becomes "xraw", "RAW" "xRAW".
//     So a camera keyword named raw is relayed as xraw.
//
// A valid name is returned unchanged.
func SafeName(name string) string {
	if ValidName(name) {
		return name
	}
	return string(appendName(nil, name))
}

func appendName(dst []byte, name string) []byte {
	if name == "" || !isASCIILetter(name[0]) || ReservedName(name) {
		dst = append(dst, 'x')
	}
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			if isNameByte(c) {
				dst = append(dst, c)
			} else {
				dst = append(dst, '_')
			}
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(name[i:])
		dst = append(dst, '_')
		i += size
	}
	return dst
}

func isASCIILetter(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') }

func isNameByte(b byte) bool {
	return isASCIILetter(b) || (b >= '0' && b <= '9') || b == '_' || b == '.'
}
