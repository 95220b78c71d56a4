import Foundation

/// The safetensors container: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data.
/// https://github.com/huggingface/safetensors#format
enum SafeTensors {
    enum DType: String {
        case f32 = "F32"
        case i32 = "I32"
    }

    struct Tensor {
        var dtype: DType
        var shape: [Int]
        var data: Data
    }

    /// Serialises tensors in the given order; the header is padded with spaces to 8 bytes.
    static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) -> Data {
        var header = "{"
        var offset = 0
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        for (name, tensor) in tensors {
            let end = offset + tensor.data.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(
                "\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += entries.joined(separator: ",") + "}"
        while header.utf8.count % 8 != 0 {
            header += " "
        }
        var result = Data()
        var length = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { result.append(contentsOf: $0) }
        result.append(contentsOf: header.utf8)
        for (_, tensor) in tensors {
            result.append(tensor.data)
        }
        return result
    }

    /// Parses a safetensors buffer, checking that every byte range lies in the data section, that
    /// ranges tile it without gaps or overlaps, and that each range fits its dtype and shape.
    static func decode(_ bytes: Data) throws(DecodeError) -> [String: Tensor] {
        guard bytes.count >= 8 else { throw DecodeError("the file is \(bytes.count) bytes, shorter than its 8-byte header length") }
        let headerLength = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(bytes.count - 8), headerLength < 100_000_000 else {
            throw DecodeError("the header claims \(headerLength) bytes but the file has \(bytes.count - 8) after the length")
        }
        let headerStart = bytes.startIndex + 8
        let dataStart = headerStart + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: bytes[headerStart..<dataStart])
        } catch {
            throw DecodeError("the header is not valid JSON")
        }
        guard let entries = json as? [String: Any] else { throw DecodeError("the header is not a JSON object") }
        var tensors: [String: Tensor] = [:]
        var ranges: [(Int, Int)] = []
        for (name, value) in entries where name != "__metadata__" {
            guard let entry = value as? [String: Any],
                let dtypeName = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int],
                let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw DecodeError("tensor \(name) has a malformed header entry") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw DecodeError("tensor \(name) has dtype \(dtypeName); only F32 and I32 are used")
            }
            let (start, end) = (offsets[0], offsets[1])
            guard start >= 0, end >= start, end <= bytes.count - 8 - Int(headerLength) else {
                throw DecodeError("tensor \(name) lies outside the file (bytes \(start)..<\(end)): the file is truncated")
            }
            guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) * 4 == end - start else {
                throw DecodeError("tensor \(name) has shape \(shape) but \(end - start) bytes")
            }
            ranges.append((start, end))
            tensors[name] = Tensor(dtype: dtype, shape: shape, data: bytes[(dataStart + start)..<(dataStart + end)])
        }
        var expectedStart = 0
        for (start, end) in ranges.sorted(by: { $0.0 < $1.0 }) {
            guard start == expectedStart else { throw DecodeError("tensor byte ranges overlap or leave gaps") }
            expectedStart = end
        }
        guard expectedStart == bytes.count - 8 - Int(headerLength) else {
            throw DecodeError("the data section has \(bytes.count - 8 - Int(headerLength) - expectedStart) bytes no tensor claims")
        }
        return tensors
    }

    struct DecodeError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    static func floats(_ values: [Float]) -> Data {
        var data = Data(capacity: values.count * 4)
        for value in values {
            var bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: &bits) { data.append(contentsOf: $0) }
        }
        return data
    }

    static func int32s(_ values: [Int32]) -> Data {
        floats(values.map { Float(bitPattern: UInt32(bitPattern: $0)) })
    }

    static func floats(from data: Data) -> [Float] {
        data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    static func int32s(from data: Data) -> [Int32] {
        data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        }
    }

    private static func jsonString(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
