import CRecKernels
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
                "\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}"
            )
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
    /// ranges tile it without gaps or overlaps, and that each range fits its dtype and shape. Every
    /// number in the header comes from outside, so each is checked before any arithmetic on it.
    static func decode(_ bytes: Data) throws(DecodeError) -> [String: Tensor] {
        guard bytes.count >= 8 else {
            throw DecodeError("the file is \(bytes.count) bytes, shorter than its 8-byte header length")
        }
        let headerLength = bytes.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
        }
        guard headerLength <= UInt64(bytes.count - 8), headerLength <= UInt64(maximumHeaderLength) else {
            throw DecodeError(
                "the header claims \(headerLength) bytes but the file has \(bytes.count - 8) after the length"
                    + (headerLength > UInt64(maximumHeaderLength)
                        ? " (and at most \(maximumHeaderLength) are allowed)" : ""))
        }
        let headerStart = bytes.startIndex + 8
        let dataStart = headerStart + Int(headerLength)
        let dataLength = bytes.endIndex - dataStart
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: bytes[headerStart..<dataStart])
        } catch {
            throw DecodeError("the header is not valid JSON")
        }
        guard let entries = json as? [String: Any] else { throw DecodeError("the header is not a JSON object") }
        var tensors: [String: Tensor] = [:]
        var ranges: [(Int, Int)] = []
        for (name, value) in entries.sorted(by: { $0.key < $1.key }) where name != "__metadata__" {
            guard let entry = value as? [String: Any],
                let dtypeName = entry["dtype"] as? String,
                let shape = integers(entry["shape"]),
                let offsets = integers(entry["data_offsets"]), offsets.count == 2
            else {
                throw DecodeError(
                    "tensor \(name) has a malformed header entry (dtype, shape and data_offsets must be a string and whole numbers)"
                )
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw DecodeError("tensor \(name) has dtype \(dtypeName); only F32 and I32 are used")
            }
            let (start, end) = (offsets[0], offsets[1])
            guard start >= 0, end >= start, end <= dataLength else {
                throw DecodeError(
                    "tensor \(name) lies outside the file (bytes \(start)..<\(end) of a \(dataLength)-byte data section): the file is truncated or altered"
                )
            }
            guard let elements = elementCount(shape),
                case let (byteCount, false) = elements.multipliedReportingOverflow(by: 4),
                byteCount == end - start
            else {
                throw DecodeError(
                    "tensor \(name) has shape \(shape) but \(end - start) bytes (\(dtype.rawValue) takes 4 bytes an element)"
                )
            }
            ranges.append((start, end))
            tensors[name] = Tensor(dtype: dtype, shape: shape, data: bytes[(dataStart + start)..<(dataStart + end)])
        }
        var expectedStart = 0
        // By start, then end: an empty tensor (a dimension of 0) starts where the next one does.
        for (start, end) in ranges.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
            guard start == expectedStart else { throw DecodeError("tensor byte ranges overlap or leave gaps") }
            expectedStart = end
        }
        guard expectedStart == dataLength else {
            throw DecodeError("the data section has \(dataLength - expectedStart) bytes no tensor claims")
        }
        return tensors
    }

    /// The largest JSON header read (the safetensors reference limit is 100 MB).
    static let maximumHeaderLength = 100_000_000

    /// The number of elements of `shape`, nil when a dimension is negative or the product overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        var product = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    /// A JSON array of whole numbers that fit an `Int`, else nil (1.5, 1e30, "3", null).
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        for element in array {
            guard let integer = element as? Int else { return nil }
            result.append(integer)
        }
        return result
    }

    /// How many of a float tensor's values are NaN or infinite.
    static func nonFiniteCount(_ data: Data) -> Int {
        data.withUnsafeBytes { Int(rec_count_nonfinite($0.baseAddress, $0.count / 4)) }
    }

    struct DecodeError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    static func floats(_ values: [Float]) -> Data {
        #if _endian(little)
            // The memory layout is the file's: one copy (an EASE model holds items² floats).
            return values.withUnsafeBytes { Data($0) }
        #else
            var data = Data(capacity: values.count * 4)
            for value in values {
                var bits = value.bitPattern.littleEndian
                withUnsafeBytes(of: &bits) { data.append(contentsOf: $0) }
            }
            return data
        #endif
    }

    static func int32s(_ values: [Int32]) -> Data {
        floats(values.map { Float(bitPattern: UInt32(bitPattern: $0)) })
    }

    static func floats(from data: Data) -> [Float] {
        #if _endian(little)
            let count = data.count / 4
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                data.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: raw.prefix(count * 4)))
                }
                initialized = count
            }
        #else
            return data.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                }
            }
        #endif
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
