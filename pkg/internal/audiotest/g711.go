package audiotest

// DecodeULaw decodes G.711 µ-law bytes to 16-bit PCM. It follows ITU-T G.711 (the same
// expansion as the reference ulaw2linear) and is written independently of FFmpeg so that
// tests can judge FFmpeg's G.711 output; production code never uses it.
func DecodeULaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = ULawToLinear(v)
	}
	return out
}

// DecodeALaw decodes G.711 A-law bytes to 16-bit PCM (see DecodeULaw).
func DecodeALaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = ALawToLinear(v)
	}
	return out
}

// ULawToLinear expands one µ-law code word.
func ULawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0f) << 3) + 0x84 // mantissa plus bias
	t <<= (u & 0x70) >> 4          // segment
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// ALawToLinear expands one A-law code word.
func ALawToLinear(a byte) int16 {
	a ^= 0x55 // even bits are inverted on the wire
	t := int(a&0x0f) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
