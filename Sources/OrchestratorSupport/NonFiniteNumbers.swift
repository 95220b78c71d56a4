public import Foundation

/// How a number that JSON cannot hold (a stage metric that came out NaN, a division by zero)
/// is written: as the strings "nan", "inf" and "-inf", so that the record of a run whose metric
/// is not a number is still written, and says what the number was. Records written before
/// hold plain numbers only, and read as they did.
public enum NonFiniteNumbers {
    public static let encoding = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    /// Reads what `encoding` writes.
    public static let decoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
}
