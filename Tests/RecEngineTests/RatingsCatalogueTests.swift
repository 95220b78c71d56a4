import Foundation
import RecEngine
import RecEngineContract
import Testing

/// `validate` counts a ratings file's items with `RatingsCatalogue` (the controller does not link
/// the ratings reader): it must count what `RatingsFile.load` with bad rows skipped keeps, and
/// decline what the reader refuses.
@Suite struct RatingsCatalogueTests {
    static let files: [(name: String, text: String)] = [
        ("header and timestamps", "user_id,movie_id,rating,timestamp\nu,a,4,t\nv,b,5,t\nu,b,3,t\n"),
        ("no header", "u,a,4\nv,b,5\nw,c,1\n"),
        (
            "MovieLens TSV with CRLF and a blank line",
            "196\t242\t3\t881250949\r\n186\t302\t3\t891717742\r\n\n22\t377\t1\t878887116\r\n"
        ),
        (
            "bad rows skipped",
            "user_id,movie_id,rating\nu,a,4\nu,,4\n,b,4\nu,c,9\nu,d,0.5\nu,e,nan\nu,f,x\nu,g,4,extra\n  \nv,h,2.5\n"
        ),
        ("every row bad", "user_id,movie_id,rating\nu,a,9\n"),
        ("an unknown header", "user,movie,rating\nu,a,4\n"),
        ("two columns", "u,a\n"),
        ("five tab-separated columns", "196\t242\t3\t881250949\textra\n186\t302\t3\t891717742\textra\n"),
        ("two tab-separated columns", "196\t242\n"),
        ("empty", ""),
    ]

    @Test(arguments: files) func countsWhatTheRatingsReaderKeeps(_ file: (name: String, text: String)) async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/ratings"
            try write(file.text, to: path)
            let read = try? RatingsFile.load(path: path, onBadRow: .skip)
            #expect(RatingsCatalogue.itemCount(ofFile: path) == read?.ratings.itemCount, "\(file.name)")
        }
    }

    @Test func declinesWhatIsNotARegularFile() async throws {
        try await withTemporaryDirectory { folder in
            #expect(RatingsCatalogue.itemCount(ofFile: folder + "/missing") == nil)
            #expect(RatingsCatalogue.itemCount(ofFile: folder) == nil)
            #expect(mkfifo(folder + "/fifo", 0o600) == 0)
            #expect(RatingsCatalogue.itemCount(ofFile: folder + "/fifo") == nil, "a FIFO is never opened")
        }
    }
}
