// Package fits writes (and reads back) the one kind of FITS file the camera
// simulator produces: a single primary HDU holding a two-dimensional image
// of unsigned 16-bit pixels, stored as BITPIX=16 with BZERO=32768, in
// 2880-byte blocks with 80-character header cards, big-endian data and the
// padding the FITS standard requires.
//
// It is deliberately minimal: no extensions, no other pixel types, no
// CONTINUE long strings. It must not silently write a card that is not valid
// FITS: bad keywords, non-ASCII text, over-long strings and non-finite
// numbers are errors.
package fits
