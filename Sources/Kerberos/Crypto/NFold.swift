/// RFC 3961 section 5.1: n-fold, which stretches or folds a string to `outputBytes` bytes by replicating it with
/// 13-bit right rotations and adding the copies with one's-complement addition.
func nFold(_ input: [UInt8], outputBytes: Int) -> [UInt8] {
    let inBytes = input.count
    precondition(inBytes > 0 && outputBytes > 0)
    let lcm = inBytes / gcd(inBytes, outputBytes) * outputBytes
    var out = [UInt8](repeating: 0, count: outputBytes)
    var carry = 0
    // Walk the lcm-byte replicated string from its last byte, adding each byte into the output byte it lands on.
    for i in stride(from: lcm - 1, through: 0, by: -1) {
        let msbit = ((inBytes << 3) - 1 + (((inBytes << 3) + 13) * (i / inBytes)) + ((inBytes - (i % inBytes)) << 3))
            % (inBytes << 3)
        let high = Int(input[((inBytes - 1) - (msbit >> 3)) % inBytes])
        let low = Int(input[(inBytes - (msbit >> 3)) % inBytes])
        let byte = (((high << 8) | low) >> ((msbit & 7) + 1)) & 0xFF
        carry += byte + Int(out[i % outputBytes])
        out[i % outputBytes] = UInt8(carry & 0xFF)
        carry >>= 8
    }
    // One's-complement addition: carries wrap around to the least significant end.
    var index = outputBytes - 1
    while carry != 0 {
        carry += Int(out[index])
        out[index] = UInt8(carry & 0xFF)
        carry >>= 8
        index = index == 0 ? outputBytes - 1 : index - 1
    }
    return out
}

private func gcd(_ a: Int, _ b: Int) -> Int {
    var (a, b) = (a, b)
    while b != 0 { (a, b) = (b, a % b) }
    return a
}
