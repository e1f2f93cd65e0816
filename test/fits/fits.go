package fits

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	// BlockSize is the size of a FITS logical record; header and data
	// each fill a whole number of blocks.
	BlockSize = 2880
	// CardSize is the size of one header card.
	CardSize = 80
	// MaxStringLen is the longest string value one card can hold (a quote
	// inside the string counts twice).
	MaxStringLen = 68

	cardsPerBlock = BlockSize / CardSize
	// maxPixels bounds what Decode allocates for hostile input.
	maxPixels = 1 << 28
	// maxHeaderBlocks bounds how far Decode looks for the END card.
	maxHeaderBlocks = 1000
	uint16Zero      = 32768
)

// Card is one header card.
//
// Value is a string, a bool, any Go integer or a float32/float64; it is
// written in the fixed format of the standard. A nil Value makes a
// commentary card (such as COMMENT or HISTORY) whose text is Comment.
//
// Decode gives back string, bool, int64 or float64 values. Leading and
// trailing spaces of a comment and trailing spaces of a string value are
// not significant in FITS and are not kept.
type Card struct {
	Key     string
	Value   any
	Comment string
}

// Image is a two-dimensional image of unsigned 16-bit pixels, stored row
// by row (Pixels[y*Width+x]), and the extra header cards written after the
// structural ones.
type Image struct {
	Width, Height int
	Pixels        []uint16
	// Cards are the header cards besides the structural ones (SIMPLE,
	// BITPIX, NAXIS, NAXIS1, NAXIS2, EXTEND, BZERO, BSCALE, END), which
	// Encode writes itself and Decode leaves out.
	Cards []Card
}

// Card returns the first card with the key, and whether there is one.
func (im *Image) Card(key string) (Card, bool) {
	for _, c := range im.Cards {
		if c.Key == key {
			return c, true
		}
	}
	return Card{}, false
}

var structural = map[string]bool{
	"SIMPLE": true, "BITPIX": true, "NAXIS": true, "NAXIS1": true, "NAXIS2": true,
	"EXTEND": true, "BZERO": true, "BSCALE": true, "END": true,
}

// FormatDate formats a time as a FITS date-time value (UTC, milliseconds),
// as used for DATE-OBS.
func FormatDate(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000")
}

// Encode writes the image as a FITS file holding one primary HDU.
func Encode(w io.Writer, im *Image) error {
	if im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("fits: bad image size %dx%d", im.Width, im.Height)
	}
	if len(im.Pixels) != im.Width*im.Height {
		return fmt.Errorf("fits: %d pixels for a %dx%d image", len(im.Pixels), im.Width, im.Height)
	}
	cards := []Card{
		{"SIMPLE", true, "conforms to FITS standard"},
		{"BITPIX", 16, "array data type"},
		{"NAXIS", 2, "number of array dimensions"},
		{"NAXIS1", im.Width, ""},
		{"NAXIS2", im.Height, ""},
		{"EXTEND", true, ""},
		{"BZERO", uint16Zero, "offset data range to that of unsigned short"},
		{"BSCALE", 1, "default scaling factor"},
	}
	for _, c := range im.Cards {
		if structural[strings.ToUpper(c.Key)] {
			return fmt.Errorf("fits: card %q is written by the encoder itself", c.Key)
		}
		cards = append(cards, c)
	}
	header := make([]byte, 0, (len(cards)/cardsPerBlock+1)*BlockSize)
	for _, c := range cards {
		b, err := formatCard(c)
		if err != nil {
			return err
		}
		header = append(header, b...)
	}
	header = append(header, pad("END")...)
	header = padTo(header, ' ')

	bw := bufio.NewWriterSize(w, 64*1024)
	if _, err := bw.Write(header); err != nil {
		return fmt.Errorf("fits: writing header: %w", err)
	}
	var buf [2]byte
	for _, v := range im.Pixels {
		// v - 32768 as a two's complement int16 is v with its top bit flipped.
		binary.BigEndian.PutUint16(buf[:], v^0x8000)
		if _, err := bw.Write(buf[:]); err != nil {
			return fmt.Errorf("fits: writing data: %w", err)
		}
	}
	if rem := (2 * len(im.Pixels)) % BlockSize; rem != 0 {
		if _, err := bw.Write(make([]byte, BlockSize-rem)); err != nil {
			return fmt.Errorf("fits: writing padding: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("fits: writing: %w", err)
	}
	return nil
}

func pad(s string) []byte {
	b := []byte(s)
	for len(b) < CardSize {
		b = append(b, ' ')
	}
	return b
}

func padTo(b []byte, fill byte) []byte {
	for len(b)%BlockSize != 0 {
		b = append(b, fill)
	}
	return b
}

func validKey(k string) bool {
	if k == "" || len(k) > 8 {
		return false
	}
	for _, r := range k {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 32 || s[i] > 126 {
			return false
		}
	}
	return true
}

// formatCard renders one 80-character card.
func formatCard(c Card) ([]byte, error) {
	if !validKey(c.Key) {
		return nil, fmt.Errorf("fits: bad keyword %q (1-8 characters of A-Z, 0-9, '-', '_')", c.Key)
	}
	if !validText(c.Comment) {
		return nil, fmt.Errorf("fits: card %s: comment is not printable ASCII", c.Key)
	}
	key := fmt.Sprintf("%-8s", c.Key)
	if c.Value == nil {
		if len(c.Comment) > CardSize-8 {
			return nil, fmt.Errorf("fits: card %s: commentary text longer than %d characters", c.Key, CardSize-8)
		}
		return pad(key + c.Comment), nil
	}
	val, err := formatValue(c.Value)
	if err != nil {
		return nil, fmt.Errorf("fits: card %s: %w", c.Key, err)
	}
	s := key + "= " + val
	if c.Comment == "" {
		s = strings.TrimRight(s, " ")
	}
	if len(s) > CardSize {
		return nil, fmt.Errorf("fits: card %s: value does not fit in a card", c.Key)
	}
	if c.Comment != "" && len(s)+3 < CardSize {
		s += " / " + c.Comment
		if len(s) > CardSize {
			s = s[:CardSize] // comments may be cut; values never are
		}
	}
	return pad(s), nil
}

// formatValue renders a value in the fixed format: strings start in
// column 11 and hold at least 8 characters, other values end in column 30.
func formatValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if !validText(x) {
			return "", errors.New("string value is not printable ASCII")
		}
		q := strings.ReplaceAll(x, "'", "''")
		if len(q) > MaxStringLen {
			return "", fmt.Errorf("string value longer than %d characters", MaxStringLen)
		}
		// Like other writers, pad the value field to column 30 so that
		// comments line up.
		return fmt.Sprintf("%-20s", "'"+fmt.Sprintf("%-8s", q)+"'"), nil
	case bool:
		if x {
			return fmt.Sprintf("%20s", "T"), nil
		}
		return fmt.Sprintf("%20s", "F"), nil
	case int:
		return fmt.Sprintf("%20d", x), nil
	case int8:
		return fmt.Sprintf("%20d", x), nil
	case int16:
		return fmt.Sprintf("%20d", x), nil
	case int32:
		return fmt.Sprintf("%20d", x), nil
	case int64:
		return fmt.Sprintf("%20d", x), nil
	case uint:
		return fmt.Sprintf("%20d", x), nil
	case uint8:
		return fmt.Sprintf("%20d", x), nil
	case uint16:
		return fmt.Sprintf("%20d", x), nil
	case uint32:
		return fmt.Sprintf("%20d", x), nil
	case uint64:
		return fmt.Sprintf("%20d", x), nil
	case float32:
		return formatFloat(float64(x), 32)
	case float64:
		return formatFloat(x, 64)
	default:
		return "", fmt.Errorf("unsupported value type %T", v)
	}
}

func formatFloat(f float64, bits int) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", errors.New("FITS cannot hold a non-finite number")
	}
	s := strconv.FormatFloat(f, 'G', -1, bits)
	// FITS wants a decimal point in a real value: 1 -> 1.0, 1E+20 -> 1.0E+20.
	if !strings.Contains(s, ".") {
		if i := strings.IndexByte(s, 'E'); i >= 0 {
			s = s[:i] + ".0" + s[i:]
		} else {
			s += ".0"
		}
	}
	return fmt.Sprintf("%20s", s), nil
}

// Decode reads a FITS file written by Encode: a primary HDU with a 2-D
// BITPIX=16 image and BZERO=32768. It checks the block structure, so a
// truncated or misaligned file is an error.
func Decode(r io.Reader) (*Image, error) {
	im := &Image{}
	var (
		block     = make([]byte, BlockSize)
		gotEnd    bool
		keys      = map[string]any{}
		cardIndex int
	)
	for n := 0; !gotEnd; n++ {
		if n >= maxHeaderBlocks {
			return nil, errors.New("fits: no END card")
		}
		if _, err := io.ReadFull(r, block); err != nil {
			return nil, fmt.Errorf("fits: reading header: %w", err)
		}
		for i := 0; i < cardsPerBlock; i++ {
			raw := string(block[i*CardSize : (i+1)*CardSize])
			if gotEnd {
				if strings.TrimRight(raw, " ") != "" {
					return nil, errors.New("fits: header padding after END is not blank")
				}
				continue
			}
			if !validText(raw) {
				return nil, fmt.Errorf("fits: card %d is not printable ASCII", cardIndex+1)
			}
			c, err := parseCard(raw)
			if err != nil {
				return nil, fmt.Errorf("fits: card %d: %w", cardIndex+1, err)
			}
			if err := checkOrder(cardIndex, c); err != nil {
				return nil, err
			}
			cardIndex++
			switch {
			case c.Key == "END":
				gotEnd = true
			case structural[c.Key]:
				keys[c.Key] = c.Value
			default:
				im.Cards = append(im.Cards, c)
			}
		}
	}
	if keys["BITPIX"] != int64(16) || keys["NAXIS"] != int64(2) {
		return nil, fmt.Errorf("fits: only BITPIX=16 NAXIS=2 images are supported (BITPIX=%v NAXIS=%v)", keys["BITPIX"], keys["NAXIS"])
	}
	if keys["BZERO"] != int64(uint16Zero) && keys["BZERO"] != float64(uint16Zero) {
		return nil, fmt.Errorf("fits: BZERO=%v, only unsigned 16-bit data (BZERO=32768) is supported", keys["BZERO"])
	}
	if bs, ok := keys["BSCALE"]; ok && bs != int64(1) && bs != float64(1) {
		return nil, fmt.Errorf("fits: BSCALE=%v, only 1 is supported", bs)
	}
	w, okw := keys["NAXIS1"].(int64)
	h, okh := keys["NAXIS2"].(int64)
	if !okw || !okh || w <= 0 || h <= 0 || w > maxPixels || h > maxPixels || w*h > maxPixels {
		return nil, fmt.Errorf("fits: bad image size NAXIS1=%v NAXIS2=%v", keys["NAXIS1"], keys["NAXIS2"])
	}
	im.Width, im.Height = int(w), int(h)
	n := im.Width * im.Height
	size := 2 * n
	if rem := size % BlockSize; rem != 0 {
		size += BlockSize - rem
	}
	// Copy rather than allocate the whole size up front: a header that
	// claims a huge image in a short file must not cost its full size.
	var buf bytes.Buffer
	if m, err := io.CopyN(&buf, r, int64(size)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("fits: reading data (%d of %d bytes): %w", m, size, err)
	}
	data := buf.Bytes()
	for _, b := range data[2*n:] {
		if b != 0 {
			return nil, errors.New("fits: data padding is not zero")
		}
	}
	im.Pixels = make([]uint16, n)
	for i := range im.Pixels {
		im.Pixels[i] = binary.BigEndian.Uint16(data[2*i:]) ^ 0x8000
	}
	return im, nil
}

// checkOrder enforces the order of the mandatory cards.
func checkOrder(i int, c Card) error {
	want := []string{"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2"}
	if i < len(want) && c.Key != want[i] {
		return fmt.Errorf("fits: card %d is %q, want %q", i+1, c.Key, want[i])
	}
	if i == 0 && c.Value != true {
		return errors.New("fits: SIMPLE is not T")
	}
	return nil
}

// parseCard parses one 80-character card.
func parseCard(raw string) (Card, error) {
	key := strings.TrimRight(raw[:8], " ")
	if key != "" && !validKey(key) {
		return Card{}, fmt.Errorf("bad keyword %q", key)
	}
	if key == "END" {
		if strings.TrimRight(raw[3:], " ") != "" {
			return Card{}, errors.New("END card is not blank")
		}
		return Card{Key: key}, nil
	}
	if raw[8:10] != "= " {
		return Card{Key: key, Comment: strings.TrimRight(raw[8:], " ")}, nil
	}
	field := strings.TrimLeft(raw[10:], " ")
	var (
		c    = Card{Key: key}
		rest string
	)
	if strings.HasPrefix(field, "'") {
		var sb strings.Builder
		i := 1
		for {
			if i >= len(field) {
				return Card{}, errors.New("unterminated string")
			}
			if field[i] == '\'' {
				if i+1 < len(field) && field[i+1] == '\'' {
					sb.WriteByte('\'')
					i += 2
					continue
				}
				break
			}
			sb.WriteByte(field[i])
			i++
		}
		c.Value = strings.TrimRight(sb.String(), " ")
		rest = strings.TrimLeft(field[i+1:], " ")
	} else {
		tok := field
		rest = ""
		if j := strings.IndexByte(field, '/'); j >= 0 {
			tok, rest = field[:j], field[j:]
		}
		tok = strings.TrimSpace(tok)
		v, err := parseScalar(tok)
		if err != nil {
			return Card{}, err
		}
		c.Value = v
	}
	if rest != "" {
		if !strings.HasPrefix(rest, "/") {
			return Card{}, fmt.Errorf("text after the value: %q", rest)
		}
		c.Comment = strings.TrimSpace(rest[1:])
	}
	return c, nil
}

func parseScalar(tok string) (any, error) {
	switch tok {
	case "":
		return nil, nil
	case "T":
		return true, nil
	case "F":
		return false, nil
	}
	if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(strings.Replace(tok, "D", "E", 1), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("bad value %q", tok)
	}
	return f, nil
}
