import FuzzSupport
import RecEngine

// One movie log line, as the ingest reads it from Kafka or a file.
runFuzzer { bytes in
    _ = MovieLogLine.parse(Substring(String(decoding: bytes, as: UTF8.self)))
}
