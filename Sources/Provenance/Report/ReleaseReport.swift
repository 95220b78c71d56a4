public import Foundation
public import PipelineSchema

/// What a person looking after releases wants to see of one release, taken from its record in the
/// history (and, for the live model's offline metrics, from the record of the release that was
/// live): the traffic weights per colour over time, every gate and judge measurement against its
/// bound, the stages, each step's verdict and the rule that decided it, what a rollback did, and a
/// Grafana link for the time range. `report.html`, `report.md` and `report.json` are rendered
/// from this one value.
public struct ReleaseReport: Sendable, Codable, Equatable {
    public static let schema = "orchestrate.report/v1"

    public var schema = ReleaseReport.schema
    public var release: Summary
    /// The model this release built (or, for a rollback, put back).
    public var model: Model?
    /// The model that was live when the release started; nil when none was.
    public var liveModel: Model?
    /// Every stage metric of this release beside the live release's value of the same metric.
    public var offlineMetrics: [OfflineMetric]
    public var stages: [Stage]
    public var rollout: Rollout?
    /// The Grafana dashboard over the release's time range.
    public var grafana: GrafanaLink?

    public struct Summary: Sendable, Codable, Equatable {
        public var releaseID: String
        public var action: String
        public var outcome: String
        public var failure: String?
        public var startedOn: Date
        public var finishedOn: Date?
        public var durationSeconds: Double?
        public var pipeline: String
        public var pipelinePath: String
        public var trigger: String
        public var user: String
        public var host: String
        public var gitCommit: String?
        public var gitDirty: Bool?
        /// The key id that signed the record; nil when it is unsigned.
        public var signerKeyID: String?
    }

    public struct Model: Sendable, Codable, Equatable {
        /// The release that built the model.
        public var releaseID: String
        public var version: String?
        public var sha256: String?
        /// The colour it was deployed on, when the record says.
        public var color: String?
    }

    public struct OfflineMetric: Sendable, Codable, Equatable {
        public var stage: String
        public var metric: String
        public var value: Double
        /// The same stage's metric in the live release; nil when it has none.
        public var liveValue: Double?
    }

    public struct Stage: Sendable, Codable, Equatable {
        public var name: String
        public var status: String
        public var durationSeconds: Double
        public var attempts: Int
        public var exitStatus: Int32?
        public var inputs: [Digest]
        public var outputs: [Digest]
        public var metrics: [Metric]
        public var gates: [Gate]
        /// Why it was cached, skipped or not run; or the error that failed it.
        public var note: String?

        public struct Digest: Sendable, Codable, Equatable {
            public var path: String
            /// nil when the path did not exist.
            public var sha256: String?
        }

        public struct Metric: Sendable, Codable, Equatable {
            public var name: String
            public var value: Double
        }

        public struct Gate: Sendable, Codable, Equatable {
            public var metric: String
            public var condition: String
            public var value: Double?
            public var passed: Bool
        }
    }

    /// The rollout: where traffic went, what each step measured and decided, and every event.
    public struct Rollout: Sendable, Codable, Equatable {
        /// The colour that was live (nil: none was), and the colour released to.
        public var live: String?
        public var target: String
        public var mode: String
        /// The weights in force from each point on, per colour (the record's shift events).
        public var weights: [WeightPoint]
        public var steps: [Step]
        /// One series per PromQL gate: its measurements of the new colour over time.
        public var gates: [GateSeries]
        /// One series per judge comparison: new against live over time, with the interval.
        public var judge: [JudgeSeries]
        public var events: [Event]
        /// What the rollback (or the interruption, or the abort) did; nil when there was none.
        public var rollback: Rollback?
        /// The shadow stage before the first step, as recorded; nil when none ran.
        public var shadow: ShadowComparison? = nil
        /// Who answered each webhook gate (its receiver, or a person by hand), and when; nil when
        /// no gate was answered.
        public var gateAnswers: [ReleaseRecord.RolloutRecord.GateAnswer]? = nil
    }

    public struct WeightPoint: Sendable, Codable, Equatable {
        public var at: Date
        /// Percent of traffic per colour; every colour of the rollout is named.
        public var weights: [ColorWeight]
        /// The event that set them.
        public var detail: String
    }

    public struct ColorWeight: Sendable, Codable, Equatable {
        public var color: String
        public var weight: Int
    }

    public struct Step: Sendable, Codable, Equatable {
        /// 1-based.
        public var number: Int
        public var weight: Int
        public var startedOn: Date
        public var finishedOn: Date?
        public var durationSeconds: Double?
        /// passed, failed or undecided.
        public var verdict: String
        /// The rule that decided, in words.
        public var rule: String
        public var measurements: Int
        public var judgeLooks: Int
    }

    /// A bound of a gate condition (`>= 0.02`, `<= 0.05`).
    public struct Bound: Sendable, Codable, Equatable {
        /// `>=` or `<=`.
        public var relation: String
        public var value: Double
    }

    public struct GateSeries: Sendable, Codable, Equatable {
        public var gate: String
        public var condition: String
        public var bounds: [Bound]
        /// The colour the gate measured (the new one).
        public var color: String
        public var query: String
        public var points: [GatePoint]
    }

    public struct GatePoint: Sendable, Codable, Equatable {
        public var at: Date
        public var step: Int
        /// nil when there was no data or the query failed.
        public var value: Double?
        /// success, failure, nodata, inconclusive or error.
        public var outcome: String
        public var error: String?
    }

    public struct JudgeSeries: Sendable, Codable, Equatable {
        /// The metric, with the quantile for a histogram (`latency >p95`).
        public var metric: String
        public var critical: Bool
        /// The live colour and the new one.
        public var liveColor: String
        public var newColor: String
        public var points: [JudgePoint]
    }

    public struct JudgePoint: Sendable, Codable, Equatable {
        public var at: Date
        public var step: Int
        /// The new colour's rate (successes / trials), nil with no trials.
        public var newRate: Double?
        public var liveRate: Double?
        /// new − live, its always-valid interval, and the margin that matters.
        public var difference: Double
        public var lower: Double
        public var upper: Double
        public var margin: Double
        public var classification: String
    }

    public struct Event: Sendable, Codable, Equatable {
        public var at: Date
        public var kind: String
        public var detail: String
    }

    public struct Rollback: Sendable, Codable, Equatable {
        public var at: Date
        /// Why: the rollback, abort or interrupt event's detail (or the record's failure).
        public var reason: String
        /// What was done from then on, in order.
        public var actions: [Event]
    }

    public struct GrafanaLink: Sendable, Codable, Equatable {
        public var url: String
        public var from: Date
        public var to: Date
    }
}
