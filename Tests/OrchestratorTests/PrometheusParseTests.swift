import Foundation
import Testing

@testable import Orchestrator

/// `PrometheusClient.parse`, which turns an instant query's answer into a gate's sample, on
/// answers captured from Prometheus 2.42 (`curl -G --data-urlencode query=... /api/v1/query`)
/// and on malformed ones: what is refused, and with which message.
@Suite struct PrometheusParseTests {
    /// Captured from Prometheus 2.42.0: the query, then its answer.
    static let captured:
        [(query: String, answer: String, status: Int, sample: PrometheusClient.Sample?, error: String?)] = [
            (
                "vector(42)",
                #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796645275.111,"42"]}]}}"#,
                200, .value(42), nil
            ),
            (
                "scalar(vector(0.25))",
                #"{"status":"success","data":{"resultType":"scalar","result":[1796645275.127,"0.25"]}}"#, 200,
                .value(0.25), nil
            ),
            (
                "vector(0)/vector(0)",
                #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796645275.151,"NaN"]}]}}"#,
                200, .notANumber, nil
            ),
            ("nothing_here", #"{"status":"success","data":{"resultType":"vector","result":[]}}"#, 200, .noData, nil),
            (
                "1/0", #"{"status":"success","data":{"resultType":"scalar","result":[1796645275.201,"+Inf"]}}"#, 200,
                .value(.infinity), nil
            ),
            (
                "-1/0", #"{"status":"success","data":{"resultType":"scalar","result":[1796645275.219,"-Inf"]}}"#, 200,
                .value(-.infinity), nil
            ),
            (
                #"vector(1) or label_replace(vector(2),"a","b","","")"#,
                #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796645275.161,"2"]},{"metric":{"a":"b"},"value":[1796645275.161,"2"]}]}}"#,
                200, nil, "the query returned 2 series; a gate needs one: wrap it in sum(...)"
            ),
            (
                "sum(",
                #"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#,
                400, nil,
                #"Prometheus answered HTTP 400, bad_data: invalid parameter "query": 1:5: parse error: unclosed left parenthesis"#
            ),
            (
                #""text""#, #"{"status":"success","data":{"resultType":"string","result":[1796645275.237,"text"]}}"#,
                200, nil, "the query returned a string result; a gate needs an instant vector or scalar"
            ),
        ]

    @Test(arguments: 0..<captured.count)
    func aCapturedAnswer(index: Int) {
        let (query, answer, status, sample, error) = Self.captured[index]
        do {
            let parsed = try PrometheusClient.parse(Data(answer.utf8), status: status)
            #expect(parsed == sample, "\(query)")
            #expect(error == nil, "\(query) should be refused")
        } catch {
            #expect(sample == nil, "\(query): \(error)")
            #expect("\(error)" == Self.captured[index].error, "\(query)")
        }
    }

    static let notASample = #"Prometheus returned a sample that is not [time, "value"]"#

    /// Malformed answers: a field of another type reads as absent, as `JSONSerialization` read it.
    static let malformed: [(answer: String, sample: PrometheusClient.Sample?, error: String?)] = [
        (
            #"{"status":"success","data":{"resultType":"matrix","result":[]}}"#, nil,
            "the query returned a matrix result; a gate needs an instant vector or scalar"
        ),
        (
            #"{"status":"success","data":{"resultType":5,"result":[]}}"#, nil,
            "the query returned a missing result; a gate needs an instant vector or scalar"
        ),
        (
            #"{"status":"success","data":{"result":[]}}"#, nil,
            "the query returned a missing result; a gate needs an instant vector or scalar"
        ),
        // A vector whose result is absent, null, not an array, or holds a non-object: no series.
        (#"{"status":"success","data":{"resultType":"vector"}}"#, .noData, nil),
        (#"{"status":"success","data":{"resultType":"vector","result":null}}"#, .noData, nil),
        (#"{"status":"success","data":{"resultType":"vector","result":"x"}}"#, .noData, nil),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"2"]},1]}}"#, .noData, nil),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}},{"value":[1,"2"]}]}}"#, nil,
            "the query returned 2 series; a gate needs one: wrap it in sum(...)"
        ),
        // Samples that are not [time, "value"]; the time may be anything.
        (#"{"status":"success","data":{"resultType":"vector","result":[{}]}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"2",3]}]}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"value":"12"}]}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,""]}]}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"twelve"]}]}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"scalar","result":[1]}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"scalar","result":{"a":1}}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"scalar"}}"#, nil, notASample),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"value":[null,"2"]}]}}"#, .value(2), nil),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"value":[[1,{"a":null}],"7"]}]}}"#,
            .value(7), nil
        ),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1e400"]}]}}"#, .value(.infinity),
            nil
        ),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"metric":5,"value":[1,"3"]}]},"warnings":[null,true,1.5,"w"]}"#,
            .value(3), nil
        ),
        // Not a success with data: Prometheus's error when it gives one, else the body's start.
        (
            #"{"status":"success","data":[]}"#, nil,
            #"Prometheus answered HTTP 200 without a result: "{"status":"success","data":[]}""#
        ),
        (#"{"status":"success"}"#, nil, #"Prometheus answered HTTP 200 without a result: "{"status":"success"}""#),
        (
            #"{"status":true,"data":{"resultType":"vector","result":[]}}"#, nil,
            #"Prometheus answered HTTP 200 without a result: "{"status":true,"data":{"resultType":"vector","result":[]}}""#
        ),
        (#"{"status":"error","error":"boom"}"#, nil, "Prometheus answered HTTP 200, error: boom"),
        (#"{"status":"error","error":"boom","errorType":7}"#, nil, "Prometheus answered HTTP 200, error: boom"),
        (
            #"{"status":"error","error":5}"#, nil,
            #"Prometheus answered HTTP 200 without a result: "{"status":"error","error":5}""#
        ),
        (
            "<html>502 Bad Gateway</html>", nil,
            #"Prometheus answered HTTP 200 without a result: "<html>502 Bad Gateway</html>""#
        ),
        ("", nil, "Prometheus answered HTTP 200 without a result: an empty body"),
        (#"["status","success"]"#, nil, #"Prometheus answered HTTP 200 without a result: "["status","success"]""#),
        // Not JSON, or a value JSON cannot carry anywhere in it: refused whole.
        (
            #"{"status":"success","data":{"resultType":"vector","result":[]}"#, nil,
            #"Prometheus answered HTTP 200 without a result: "{"status":"success","data":{"resultType":"vector","result":[]}""#
        ),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#, nil,
            #"Prometheus answered HTTP 200 without a result: "{"status":"success","data":{"resultType":"vector","result":[]}} trailing""#
        ),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"value":[1e999,"3"]}]}}"#, nil,
            #"Prometheus answered HTTP 200 without a result: "{"status":"success","data":{"resultType":"vector","result":[{"value":[1e999,"3"]}]}}""#
        ),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"\ud800"},"value":[1,"3"]}]}}"#,
            nil,
            #"Prometheus answered HTTP 200 without a result: "{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"\ud800"},"value":[1,"3"]}]}}""#
        ),
    ]

    @Test(arguments: 0..<malformed.count)
    func aMalformedAnswer(index: Int) {
        let (answer, sample, message) = Self.malformed[index]
        do {
            let parsed = try PrometheusClient.parse(Data(answer.utf8), status: 200)
            #expect(parsed == sample, "\(answer)")
            #expect(message == nil, "\(answer) should be refused")
        } catch {
            #expect(sample == nil, "\(answer): \(error)")
            #expect("\(error)" == message, "\(answer)")
        }
    }
}
