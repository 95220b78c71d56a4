import RecEngine
import RecEngineContract
import Testing

@Suite struct MovieLogLineTests {
    @Test func parsesTheThreeKinds() {
        #expect(
            MovieLogLine.parse("2022-03-18T05:53:29,162591,GET /rate/the+incredibles+2004=4")
                == .success(
                    .rating(time: "2022-03-18T05:53:29", user: "162591", movie: "the+incredibles+2004", rating: 4)))
        #expect(
            MovieLogLine.parse("2022-03-18T05:53:29.123,7,GET /data/m/up+2009/12.mpg")
                == .success(.watch(time: "2022-03-18T05:53:29.123", user: "7", movie: "up+2009", minute: 12)))
        #expect(
            MovieLogLine.parse(
                "2022-03-18T05:53:30,42,recommendation request 17645-team11.isri.cmu.edu:8082, status 200, result: up+2009, heat+1995, alien+1979, 97 ms"
            )
                == .success(
                    .recommendation(
                        time: "2022-03-18T05:53:30", user: "42", status: 200,
                        movies: ["up+2009", "heat+1995", "alien+1979"], milliseconds: 97)))
    }

    @Test(arguments: [
        ("", MovieLogLine.Rejection.truncated),
        ("2022-03-18T05:53:29,162591,GET /rate/the+incredibles+20", .truncated),
        ("2022-03-18T05:53:29,162591", .truncated),
        ("2022-03-18T05:53:29,162591,GET /rate/up+2009=", .truncated),
        ("2022-03-18T05:53:29,162591,GET /data/m/up+2009/1", .truncated),
        ("2022-03-18T05:53:29,42,recommendation request host:8082, status 200, result: up+2009", .truncated),
        ("2022-03-18T05:53:29,162591,GET /rate/up+2009=9", .ratingOutOfRange),
        ("2022-03-18T05:53:29,162591,GET /rate/up+2009=0", .ratingOutOfRange),
        ("2022-03-18T05:53:29,162591,GET /rate/up+2009=four", .badRating),
        ("2022-03-18T05:53:29,162591,GET /rate/up+2009=4.5", .badRating),
        (" 2022-03-18T05:53:29,162591,GET /rate/up+2009=4", .extraSpaces),
        ("2022-03-18T05:53:29,162591,GET /rate/up+2009=4 ", .extraSpaces),
        ("2022-03-18T05:53:29,162591,GET  /rate/up+2009=4", .extraSpaces),
        ("2022-03-18T05:53:29,1625 91,GET /rate/up+2009=4", .extraSpaces),
        ("2022-03-18 05:53:29,162591,GET /rate/up+2009=4", .badTime),
        ("yesterday,162591,GET /rate/up+2009=4", .badTime),
        ("2022-03-18T05:53:29,-5,GET /rate/up+2009=4", .badUser),
        ("2022-03-18T05:53:29,999999999999,GET /rate/up+2009=4", .badUser),
        ("2022-03-18T05:53:29,abc,GET /rate/up+2009=4", .badUser),
        ("2022-03-18T05:53:29,162591,GET /rate/Up 2009=4", .badMovie),
        ("2022-03-18T05:53:29,162591,GET /data/m/up+2009/x.mpg", .badMinute),
        ("2022-03-18T05:53:29,162591,POST /login", .unknownKind),
        (
            "2022-03-18T05:53:29,42,recommendation request host:8082, status abc, result: up+2009, 5 ms",
            .badRecommendation
        ),
    ])
    func malformedLinesAreRejectedWithTheirReason(line: String, reason: MovieLogLine.Rejection) {
        #expect(MovieLogLine.parse(Substring(line)) == .failure(reason))
    }
}

@Suite struct MovieLogGeneratorTests {
    @Test func everyRatingAppearsOnceAsAValidLineAmongMalformedOnes() {
        var ratings = Ratings()
        for u in 0..<50 {
            for m in 0..<8 {
                ratings.append(user: "\(1000 + u)", item: "movie+\(m)+2001", rating: Float(1 + (u + m) % 5))
            }
        }
        let lines = MovieLogGenerator(malformedShare: 0.05, seed: 3).lines(for: ratings)
        var parsedRatings: [String] = []
        var watches = 0
        var requests = 0
        var rejected = 0
        for line in lines {
            switch MovieLogLine.parse(Substring(line)) {
            case .success(.rating(_, let user, let movie, let rating)):
                parsedRatings.append("\(user),\(movie),\(rating)")
            case .success(.watch): watches += 1
            case .success(.recommendation): requests += 1
            case .failure: rejected += 1
            }
        }
        let expected = (0..<ratings.count).map {
            "\(ratings.userIDs[Int(ratings.users[$0])]),\(ratings.itemIDs[Int(ratings.items[$0])]),\(Int(ratings.values[$0]))"
        }
        #expect(parsedRatings == expected, "each rating once, in order")
        #expect(watches >= ratings.count)
        #expect(requests > 0)
        let share = Double(rejected) / Double(lines.count)
        #expect(share > 0.02 && share < 0.09, "malformed share \(share)")
    }
}
