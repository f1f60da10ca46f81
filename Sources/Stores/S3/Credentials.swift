// Where AWS credentials come from: the CredentialsProvider protocol, AWSEnvironment, and the
// providers of the default chain (environment, profile, web identity, container, instance).
public import Foundation

/// A source of AWS credentials, asked before every signed request. Providers of temporary
/// credentials are wrapped in ``RefreshingCredentials`` so the answer is cached and renewed
/// before it expires.
public protocol CredentialsProvider: Sendable {
    /// Current credentials.
    ///
    /// - Throws: ``StoreError`` `.accessDenied` when the source has none or refuses, `.network`
    ///   when it cannot be reached.
    func credentials() async throws -> S3Credentials
}

/// Fixed credentials (explicit values, MinIO keys, tests).
public struct StaticCredentials: CredentialsProvider, CustomStringConvertible {
    let value: S3Credentials
    public var description: String { "StaticCredentials(\(value))" }
    public init(_ value: S3Credentials) { self.value = value }
    public func credentials() async throws -> S3Credentials { value }
}

/// The process environment (or a dictionary standing for it) as the AWS SDKs read it. Its
/// description and reflection show variable names only, never values.
public struct AWSEnvironment: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The variables.
    public var variables: [String: String]
    /// The home directory, for `~/.aws/credentials` and `~/.aws/config`.
    public var home: String?

    /// The environment of this process.
    public static var current: AWSEnvironment {
        let env = ProcessInfo.processInfo.environment
        return AWSEnvironment(variables: env, home: env["HOME"])
    }

    public init(variables: [String: String], home: String? = nil) {
        self.variables = variables
        self.home = home
    }

    public var description: String { "AWSEnvironment(\(variables.keys.sorted().filter { $0.hasPrefix("AWS_") }.joined(separator: ", ")))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }

    /// A variable, nil when unset or empty.
    public subscript(_ name: String) -> String? {
        guard let v = variables[name], !v.isEmpty else { return nil }
        return v
    }

    /// The profile in use: `AWS_PROFILE`, else `default`.
    public var profile: String { self["AWS_PROFILE"] ?? "default" }

    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    var credentialsFile: String? { self["AWS_SHARED_CREDENTIALS_FILE"] ?? home.map { $0 + "/.aws/credentials" } }
    /// `AWS_CONFIG_FILE`, else `~/.aws/config`.
    var configFile: String? { self["AWS_CONFIG_FILE"] ?? home.map { $0 + "/.aws/config" } }

    /// The settings of the current profile: the config file's `[profile name]` (or `[default]`)
    /// section, overridden by the credentials file's `[name]` section.
    public func profileSettings() -> [String: String] {
        var settings: [String: String] = [:]
        if let path = configFile, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let sections = IniFile.parse(text)
            let name = profile == "default" ? "default" : "profile " + profile
            settings.merge(sections[name] ?? (profile == "default" ? sections["profile default"] ?? [:] : [:])) { _, new in new }
        }
        if let path = credentialsFile, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            settings.merge(IniFile.parse(text)[profile] ?? [:]) { _, new in new }
        }
        return settings
    }

    /// The region: `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region`.
    public var region: String? { self["AWS_REGION"] ?? self["AWS_DEFAULT_REGION"] ?? profileSettings()["region"] }

    /// Attempts per request as the SDKs configure it: `AWS_MAX_ATTEMPTS`, then the profile's
    /// `max_attempts`; nil when neither is set.
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` when the value is not a whole number of at least 1.
    public func maxAttempts() throws -> Int? {
        let (name, value): (String, String?) = self["AWS_MAX_ATTEMPTS"].map { ("AWS_MAX_ATTEMPTS", $0) }
            ?? ("max_attempts in profile '\(profile)'", profileSettings()["max_attempts"])
        guard let value else { return nil }
        guard let n = Int(value.trimmingCharacters(in: .whitespaces)), n >= 1 else {
            throw StoreError(.invalidArgument, "\(name) is '\(value)'; it must be a whole number of attempts, at least 1")
        }
        return n
    }

    /// The endpoint for a service: `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then
    /// the profile's `endpoint_url`.
    public func endpoint(service: String) -> String? {
        self["AWS_ENDPOINT_URL_" + service.uppercased()] ?? self["AWS_ENDPOINT_URL"] ?? profileSettings()["endpoint_url"]
    }
}

/// The shared config and credentials files: `[section]` headers and `key = value` lines;
/// `#` and `;` start comments.
enum IniFile {
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                current = name.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                if sections[current!] == nil { sections[current!] = [:] }
                continue
            }
            guard let current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            sections[current]![key] = value
        }
        return sections
    }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentials: CredentialsProvider {
    let environment: AWSEnvironment
    public init(_ environment: AWSEnvironment = .current) { self.environment = environment }

    public func credentials() async throws -> S3Credentials {
        guard let key = environment["AWS_ACCESS_KEY_ID"] else {
            throw StoreError(.accessDenied, "AWS_ACCESS_KEY_ID is not set")
        }
        guard let secret = environment["AWS_SECRET_ACCESS_KEY"] else {
            throw StoreError(.accessDenied, "AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)")
        }
        return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
    }
}

/// Static keys of the current profile in `~/.aws/credentials` / `~/.aws/config`.
public struct ProfileCredentials: CredentialsProvider {
    let environment: AWSEnvironment
    public init(_ environment: AWSEnvironment = .current) { self.environment = environment }

    public func credentials() async throws -> S3Credentials {
        let s = environment.profileSettings()
        guard let key = s["aws_access_key_id"], let secret = s["aws_secret_access_key"] else {
            throw StoreError(.accessDenied, "profile '\(environment.profile)' has no aws_access_key_id and aws_secret_access_key in the shared credentials or config file")
        }
        return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: s["aws_session_token"])
    }
}

/// `AssumeRoleWithWebIdentity` through STS with the token in `AWS_WEB_IDENTITY_TOKEN_FILE` and
/// the role in `AWS_ROLE_ARN` (EKS service accounts). The request is unsigned, as the API wants.
public struct WebIdentityCredentials: CredentialsProvider {
    let environment: AWSEnvironment
    let http = CurlHTTPClient(connectTimeoutMillis: 2000, requestTimeoutMillis: 10_000)
    public init(_ environment: AWSEnvironment = .current) { self.environment = environment }

    public func credentials() async throws -> S3Credentials {
        guard let tokenFile = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], let role = environment["AWS_ROLE_ARN"] else {
            throw StoreError(.accessDenied, "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are needed for web identity credentials")
        }
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw StoreError(.accessDenied, "cannot read the web identity token file \(tokenFile)")
        }
        let region = environment.region ?? "us-east-1"
        let endpoint = environment.endpoint(service: "sts") ?? "https://sts.\(region).amazonaws.com"
        let session = environment["AWS_ROLE_SESSION_NAME"] ?? "vecgo-\(Int(Date().timeIntervalSince1970))"
        let query = SigV4.canonicalQuery([("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"),
                                          ("RoleArn", role), ("RoleSessionName", session),
                                          ("WebIdentityToken", token.trimmingCharacters(in: .whitespacesAndNewlines))])
        let response = try await fetch(http, HTTPRequest(method: "POST", url: endpoint + "/",
                                                         headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                         body: Array(query.utf8)), source: "STS AssumeRoleWithWebIdentity")
        let xml = XMLScanner(response)
        guard let key = xml.first("AccessKeyId"), let secret = xml.first("SecretAccessKey") else {
            throw StoreError(.accessDenied, "STS AssumeRoleWithWebIdentity answered without credentials")
        }
        return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: xml.first("SessionToken"),
                             expiration: xml.first("Expiration").flatMap(parseISO8601))
    }
}

/// ECS/EKS container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on
/// 169.254.170.2) or `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with the authorization token of
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
public struct ContainerCredentials: CredentialsProvider {
    let environment: AWSEnvironment
    let http = CurlHTTPClient(connectTimeoutMillis: 2000, requestTimeoutMillis: 5000)
    public init(_ environment: AWSEnvironment = .current) { self.environment = environment }

    public func credentials() async throws -> S3Credentials {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] {
            url = "http://169.254.170.2" + relative
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] {
            url = full
        } else {
            throw StoreError(.accessDenied, "no AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI is set")
        }
        var headers: [(String, String)] = []
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] {
            guard let token = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw StoreError(.accessDenied, "cannot read the container authorization token file \(file)")
            }
            headers.append(("Authorization", token.trimmingCharacters(in: .whitespacesAndNewlines)))
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"] {
            headers.append(("Authorization", token))
        }
        let body = try await fetch(http, HTTPRequest(method: "GET", url: url, headers: headers), source: "the container credentials endpoint")
        return try decodeCredentialsJSON(body, source: "the container credentials endpoint")
    }
}

/// EC2 instance metadata with IMDSv2 session tokens: a `PUT /latest/api/token`, then the role
/// name and its credentials. `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides the address.
public struct InstanceMetadataCredentials: CredentialsProvider {
    let environment: AWSEnvironment
    let http = CurlHTTPClient(connectTimeoutMillis: 1000, requestTimeoutMillis: 2000)
    public init(_ environment: AWSEnvironment = .current) { self.environment = environment }

    public func credentials() async throws -> S3Credentials {
        let base = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            ?? "http://169.254.169.254"
        let source = "the instance metadata service"
        let token = String(decoding: try await fetch(http, HTTPRequest(
            method: "PUT", url: base + "/latest/api/token",
            headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")]), source: source), as: UTF8.self)
        let auth = [("X-aws-ec2-metadata-token", token)]
        let roles = String(decoding: try await fetch(http, HTTPRequest(
            method: "GET", url: base + "/latest/meta-data/iam/security-credentials/", headers: auth), source: source), as: UTF8.self)
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init) else {
            throw StoreError(.accessDenied, "this instance has no IAM role")
        }
        let body = try await fetch(http, HTTPRequest(
            method: "GET", url: base + "/latest/meta-data/iam/security-credentials/" + SigV4.encode(role, keepSlash: false),
            headers: auth), source: source)
        return try decodeCredentialsJSON(body, source: source)
    }
}

/// Tries providers in order and keeps the first that answers, as the SDKs' default chain:
/// environment, web identity, shared profile, container, instance metadata (skipped when
/// `AWS_EC2_METADATA_DISABLED=true`). Temporary credentials are refreshed before they expire.
public final class CredentialChain: CredentialsProvider {
    private let providers: [any CredentialsProvider]
    private let chosen = Locked<(any CredentialsProvider)?>(nil)

    /// A chain of explicit providers.
    public init(_ providers: [any CredentialsProvider]) { self.providers = providers }

    /// The SDKs' default chain for an environment.
    public static func `default`(_ env: AWSEnvironment = .current) -> CredentialChain {
        var providers: [any CredentialsProvider] = [EnvironmentCredentials(env)]
        if env["AWS_WEB_IDENTITY_TOKEN_FILE"] != nil { providers.append(RefreshingCredentials(WebIdentityCredentials(env))) }
        providers.append(ProfileCredentials(env))
        if env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] != nil || env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] != nil {
            providers.append(RefreshingCredentials(ContainerCredentials(env)))
        }
        if env["AWS_EC2_METADATA_DISABLED"]?.lowercased() != "true" {
            providers.append(RefreshingCredentials(InstanceMetadataCredentials(env)))
        }
        return CredentialChain(providers)
    }

    public func credentials() async throws -> S3Credentials {
        if let p = chosen.withLock({ $0 }) { return try await p.credentials() }
        var reasons: [String] = []
        for p in providers {
            do {
                let c = try await p.credentials()
                chosen.withLock { $0 = p }
                return c
            } catch let e as StoreError {
                reasons.append(e.message)
            }
        }
        throw StoreError(.accessDenied, "no AWS credentials found: " + reasons.joined(separator: "; "))
    }
}

/// Caches the credentials of another provider and asks it again `refreshWindow` seconds
/// before they expire (credentials without an expiration are kept). Concurrent callers share
/// one refresh.
public final class RefreshingCredentials: CredentialsProvider {
    private let base: any CredentialsProvider
    private let refreshWindow: TimeInterval
    private let now: @Sendable () -> Date
    fileprivate let state = Locked<(value: S3Credentials?, refresh: Task<S3Credentials, any Error>?)>((nil, nil))

    public init(_ base: any CredentialsProvider, refreshWindow: TimeInterval = 300,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.base = base
        self.refreshWindow = refreshWindow
        self.now = now
    }

    public func credentials() async throws -> S3Credentials {
        let current = now()
        // The cached value is returned under the same lock that checked it: an `invalidate`
        // in between cannot take it away.
        let (cached, pending) = state.withLock { s -> (S3Credentials?, Task<S3Credentials, any Error>?) in
            if let v = s.value, v.expiration.map({ $0.timeIntervalSince(current) > refreshWindow }) ?? true { return (v, nil) }
            if let t = s.refresh { return (nil, t) }
            let t = Task { [base] in try await base.credentials() }
            s.refresh = t
            return (nil, t)
        }
        if let cached { return cached }
        let task = pending!
        do {
            let fresh = try await task.value
            state.withLock { s in
                s.value = fresh
                s.refresh = nil
            }
            return fresh
        } catch {
            state.withLock { $0.refresh = nil }
            // Credentials still valid (inside the refresh window) keep serving.
            if let v = state.withLock({ $0.value }), let exp = v.expiration, exp > current { return v }
            throw error
        }
    }
}

extension RefreshingCredentials {
    /// Forgets `rejected` when it is still the cached value (the service said it expired), so
    /// the next call fetches new credentials; concurrent callers rejected with the same
    /// credentials cause one refresh, not one each.
    func invalidate(_ rejected: S3Credentials) {
        state.withLock { s in if s.value == rejected { s.value = nil } }
    }
}

/// The body of a successful GET/PUT to a credentials source, or a typed error naming it.
private func fetch(_ http: CurlHTTPClient, _ request: HTTPRequest, source: String) async throws -> [UInt8] {
    let (response, code) = try await http.perform(request)
    if code == .abortedByCallback { throw StoreError(.cancelled, "request to \(source) cancelled") }
    guard let response else { throw StoreError(.network, "cannot reach \(source): \(code)") }
    guard (200..<300).contains(response.status) else {
        let kind: StoreError.Code = response.status == 401 || response.status == 403 ? .accessDenied : .network
        throw StoreError(kind, "\(source) answered HTTP \(response.status)", httpStatus: response.status)
    }
    return response.body
}

/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}` of the container and instance
/// metadata endpoints.
private func decodeCredentialsJSON(_ body: [UInt8], source: String) throws -> S3Credentials {
    struct Answer: Decodable {
        var AccessKeyId: String?
        var SecretAccessKey: String?
        var Token: String?
        var Expiration: String?
    }
    guard let a = try? JSONDecoder().decode(Answer.self, from: Data(body)), let key = a.AccessKeyId,
          let secret = a.SecretAccessKey else {
        throw StoreError(.accessDenied, "\(source) answered without credentials")
    }
    return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: a.Token,
                         expiration: a.Expiration.flatMap(parseISO8601))
}

func parseISO8601(_ s: String) -> Date? {
    let f = ISO8601DateFormatter()
    if let d = f.date(from: s) { return d }
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.date(from: s)
}
