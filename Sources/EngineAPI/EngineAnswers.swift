public import Foundation
import HTTPTransport

/// What the Docker Engine API answers, as far as the client reads it, decoded through
/// `JSONAnswer` (every field lenient: absent or of another type reads as nil, as the
/// `JSONSerialization` trees these replace read it). Names follow the API's fields.
enum EngineAnswer {
    /// `GET /version`.
    struct Version: Decodable {
        var apiVersion: String?

        enum CodingKeys: String, CodingKey { case apiVersion = "ApiVersion" }

        init(from decoder: any Decoder) throws {
            apiVersion = try decoder.container(keyedBy: CodingKeys.self).lenient(String.self, forKey: .apiVersion)
        }
    }

    /// The body of an answer outside 2xx: `{"message": "..."}`.
    struct Failure: Decodable {
        var message: String?

        enum CodingKeys: String, CodingKey { case message }

        init(from decoder: any Decoder) throws {
            message = try decoder.container(keyedBy: CodingKeys.self).lenient(String.self, forKey: .message)
        }
    }

    /// A created object: `{"Id": "..."}` (a container, an exec) or `{"ID": "..."}` (a service).
    struct Created: Decodable {
        var id: String?
        var serviceID: String?

        enum CodingKeys: String, CodingKey {
            case id = "Id"
            case serviceID = "ID"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = container.lenient(String.self, forKey: .id)
            serviceID = container.lenient(String.self, forKey: .serviceID)
        }
    }

    /// `POST /containers/ID/wait`: `{"StatusCode": 0}`; `GET /exec/ID/json`: `{"ExitCode": 0, ...}`.
    struct Exit: Decodable {
        var statusCode: Int?
        var exitCode: Int?

        enum CodingKeys: String, CodingKey {
            case statusCode = "StatusCode"
            case exitCode = "ExitCode"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            statusCode = container.lenient(Int.self, forKey: .statusCode)
            exitCode = container.lenient(Int.self, forKey: .exitCode)
        }
    }

    /// One entry of `GET /containers/json`.
    struct Container: Decodable {
        var id: String?
        var names: [String]?
        var state: String?
        var labels: [String: String]?
        var image: String?

        enum CodingKeys: String, CodingKey {
            case id = "Id"
            case names = "Names"
            case state = "State"
            case labels = "Labels"
            case image = "Image"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = container.lenient(String.self, forKey: .id)
            names = container.lenient([String].self, forKey: .names)
            state = container.lenient(String.self, forKey: .state)
            labels = container.lenient([String: String].self, forKey: .labels)
            image = container.lenient(String.self, forKey: .image)
        }
    }

    /// `GET /containers/ID/json`, the parts the client reads.
    struct Inspection: Decodable {
        var id: String?
        var name: String?
        var image: String?
        var labels: [String: String]?
        var status: String?
        var running: Bool?
        var exitCode: Int?
        var error: String?
        var health: String?

        enum CodingKeys: String, CodingKey {
            case id = "Id"
            case name = "Name"
            case config = "Config"
            case state = "State"
        }

        enum ConfigKeys: String, CodingKey {
            case image = "Image"
            case labels = "Labels"
        }

        enum StateKeys: String, CodingKey {
            case status = "Status"
            case running = "Running"
            case exitCode = "ExitCode"
            case error = "Error"
            case health = "Health"
        }

        enum HealthKeys: String, CodingKey { case status = "Status" }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = container.lenient(String.self, forKey: .id)
            name = container.lenient(String.self, forKey: .name)
            let config = try? container.nestedContainer(keyedBy: ConfigKeys.self, forKey: .config)
            image = config?.lenient(String.self, forKey: .image)
            labels = config?.lenient([String: String].self, forKey: .labels)
            let state = try? container.nestedContainer(keyedBy: StateKeys.self, forKey: .state)
            status = state?.lenient(String.self, forKey: .status)
            running = state?.lenient(Bool.self, forKey: .running)
            exitCode = state?.lenient(Int.self, forKey: .exitCode)
            error = state?.lenient(String.self, forKey: .error)
            health = (try? state?.nestedContainer(keyedBy: HealthKeys.self, forKey: .health))?.lenient(
                String.self, forKey: .status)
        }
    }

    /// One entry of `GET /networks`.
    struct Network: Decodable {
        var name: String?

        enum CodingKeys: String, CodingKey { case name = "Name" }

        init(from decoder: any Decoder) throws {
            name = try decoder.container(keyedBy: CodingKeys.self).lenient(String.self, forKey: .name)
        }
    }

    /// One line of `GET /events`: the current fields (`Type`, `Action`, `Actor`) and the old ones
    /// (`status`, `id`) some engines still send alone.
    struct Event: Decodable {
        var type: String?
        var action: String?
        var status: String?
        var id: String?
        var actor: Actor?

        struct Actor: Decodable {
            var id: String?
            var attributes: [String: String]?

            enum CodingKeys: String, CodingKey {
                case id = "ID"
                case attributes = "Attributes"
            }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                id = container.lenient(String.self, forKey: .id)
                attributes = container.lenient([String: String].self, forKey: .attributes)
            }
        }

        enum CodingKeys: String, CodingKey {
            case type = "Type"
            case action = "Action"
            case status, id
            case actor = "Actor"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            type = container.lenient(String.self, forKey: .type)
            action = container.lenient(String.self, forKey: .action)
            status = container.lenient(String.self, forKey: .status)
            id = container.lenient(String.self, forKey: .id)
            actor = container.lenient(Actor.self, forKey: .actor)
        }
    }

    /// A line of a build's progress: `{"stream": "..."}`, or `{"error": "...", "errorDetail": {...}}`.
    struct Progress: Decodable {
        var error: String?

        enum CodingKeys: String, CodingKey { case error }

        init(from decoder: any Decoder) throws {
            error = try decoder.container(keyedBy: CodingKeys.self).lenient(String.self, forKey: .error)
        }
    }
}
