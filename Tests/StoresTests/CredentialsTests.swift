import Foundation
import Stores
import Testing
import _VecgoTestSupport

/// Each credential source of the AWS SDKs' default chain, the HTTP ones against a local server
/// this test starts, and the refresh of temporary credentials.
@Suite struct CredentialsTests {
    static let secret = "s3cr3t/Key+With=Specials"
    static let token = "SESSIONTOKEN-abc123"

    func tempDir() -> String {
        let path = FileManager.default.temporaryDirectory.path + "/vecgo-creds-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func environmentVariables() async throws {
        let env = AWSEnvironment(variables: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": Self.secret,
                                             "AWS_SESSION_TOKEN": Self.token, "AWS_DEFAULT_REGION": "eu-west-3",
                                             "AWS_ENDPOINT_URL": "http://generic:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"])
        let c = try await EnvironmentCredentials(env).credentials()
        #expect(c.accessKeyID == "AKID" && c.secretAccessKey == Self.secret && c.sessionToken == Self.token)
        #expect(env.region == "eu-west-3")
        #expect(env.endpoint(service: "s3") == "http://s3:2")
        #expect(env.endpoint(service: "dynamodb") == "http://generic:1")
        let config = try S3Configuration.fromEnvironment(bucket: "b", environment: env)
        #expect(config.region == "eu-west-3" && config.endpoint == "http://s3:2")
        var ddbEnv = env
        ddbEnv.variables["AWS_ENDPOINT_URL_DYNAMODB"] = "http://ddb:3"
        ddbEnv.variables["AWS_REGION"] = "ap-south-1"  // wins over AWS_DEFAULT_REGION
        let ddb = DynamoDBConfiguration.fromEnvironment(table: "t", environment: ddbEnv)
        #expect(ddb.endpoint == "http://ddb:3" && ddb.region == "ap-south-1")
        #expect(DynamoDBConfiguration.fromEnvironment(table: "t", environment: env).endpoint == "http://generic:1")
        await #expect(throws: StoreError.self) {
            try await EnvironmentCredentials(AWSEnvironment(variables: ["AWS_ACCESS_KEY_ID": "AKID"])).credentials()
        }
    }

    @Test func sharedProfiles() async throws {
        let home = tempDir()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try """
            [default]
            aws_access_key_id = DEFAULTKEY
            aws_secret_access_key = defaultsecret
            # a comment
            [dev]
            aws_access_key_id = DEVKEY
            aws_secret_access_key = \(Self.secret)
            aws_session_token = \(Self.token)
            """.write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        try """
            [default]
            region = us-west-2
            [profile dev]
            region = ap-south-1
            endpoint_url = http://127.0.0.1:9000
            """.write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)
        let plain = AWSEnvironment(variables: [:], home: home)
        #expect(try await ProfileCredentials(plain).credentials().accessKeyID == "DEFAULTKEY")
        #expect(plain.region == "us-west-2")
        let dev = AWSEnvironment(variables: ["AWS_PROFILE": "dev"], home: home)
        let c = try await ProfileCredentials(dev).credentials()
        #expect(c.accessKeyID == "DEVKEY" && c.secretAccessKey == Self.secret && c.sessionToken == Self.token)
        #expect(dev.region == "ap-south-1" && dev.endpoint(service: "s3") == "http://127.0.0.1:9000")
        // The environment outranks the profile in the default chain.
        let both = AWSEnvironment(variables: ["AWS_PROFILE": "dev", "AWS_ACCESS_KEY_ID": "ENVKEY",
                                              "AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true"], home: home)
        #expect(try await CredentialChain.default(both).credentials().accessKeyID == "ENVKEY")
        let profileOnly = AWSEnvironment(variables: ["AWS_PROFILE": "dev", "AWS_EC2_METADATA_DISABLED": "true"], home: home)
        #expect(try await CredentialChain.default(profileOnly).credentials().accessKeyID == "DEVKEY")
        let missing = AWSEnvironment(variables: ["AWS_PROFILE": "nope"], home: home)
        await #expect(throws: StoreError.self) { try await ProfileCredentials(missing).credentials() }
    }

    @Test func webIdentityThroughSTS() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "eyJ-web-identity-token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        let sts = try LocalHTTPServer { _ in
            .init(200, """
                <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
                  <AssumeRoleWithWebIdentityResult><Credentials>
                    <AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>\(Self.secret)</SecretAccessKey>
                    <SessionToken>\(Self.token)</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>
                  </Credentials></AssumeRoleWithWebIdentityResult>
                </AssumeRoleWithWebIdentityResponse>
                """)
        }
        let env = AWSEnvironment(variables: ["AWS_WEB_IDENTITY_TOKEN_FILE": dir + "/token",
                                             "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/vecgo",
                                             "AWS_ROLE_SESSION_NAME": "test", "AWS_ENDPOINT_URL_STS": sts.url,
                                             "AWS_EC2_METADATA_DISABLED": "true"])
        let c = try await CredentialChain.default(env).credentials()
        #expect(c.accessKeyID == "ASIAWEB" && c.secretAccessKey == Self.secret && c.sessionToken == Self.token)
        #expect(c.expiration == ISO8601DateFormatter().date(from: "2099-01-01T00:00:00Z"))
        let request = try #require(sts.requests.first)
        let form = String(decoding: request.body, as: UTF8.self)
        #expect(request.method == "POST")
        #expect(form.contains("Action=AssumeRoleWithWebIdentity"))
        #expect(form.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fvecgo"))
        #expect(form.contains("WebIdentityToken=eyJ-web-identity-token&") || form.hasSuffix("WebIdentityToken=eyJ-web-identity-token"))
    }

    @Test func containerCredentialsWithAnAuthorizationTokenFile() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "Bearer pod-token".write(toFile: dir + "/auth", atomically: true, encoding: .utf8)
        let server = try LocalHTTPServer { r in
            guard r.headers["authorization"] == "Bearer pod-token" else { return .init(401, "") }
            return .init(200, #"{"AccessKeyId":"ASIACONT","SecretAccessKey":"\#(Self.secret)","Token":"\#(Self.token)","Expiration":"2099-01-01T00:00:00Z"}"#)
        }
        let env = AWSEnvironment(variables: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url + "/creds",
                                             "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": dir + "/auth"])
        let c = try await ContainerCredentials(env).credentials()
        #expect(c.accessKeyID == "ASIACONT" && c.sessionToken == Self.token && c.expiration != nil)
        #expect(server.requests.first?.path == "/creds")
        let wrong = AWSEnvironment(variables: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url + "/creds",
                                               "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer wrong"])
        let error = await #expect(throws: StoreError.self) { try await ContainerCredentials(wrong).credentials() }
        #expect(error?.code == .accessDenied)
    }

    @Test func instanceMetadataWithIMDSv2Tokens() async throws {
        let imds = try LocalHTTPServer { r in
            if r.method == "PUT" && r.path == "/latest/api/token" {
                return r.headers["x-aws-ec2-metadata-token-ttl-seconds"] == nil ? .init(400, "") : .init(200, "imds-token-1")
            }
            guard r.headers["x-aws-ec2-metadata-token"] == "imds-token-1" else { return .init(401, "") }
            switch r.path {
            case "/latest/meta-data/iam/security-credentials/": return .init(200, "vecgo-role\n")
            case "/latest/meta-data/iam/security-credentials/vecgo-role":
                return .init(200, #"{"Code":"Success","AccessKeyId":"ASIAIMDS","SecretAccessKey":"\#(Self.secret)","Token":"\#(Self.token)","Expiration":"2099-01-01T00:00:00Z"}"#)
            default: return .init(404, "")
            }
        }
        let env = AWSEnvironment(variables: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url])
        let c = try await InstanceMetadataCredentials(env).credentials()
        #expect(c.accessKeyID == "ASIAIMDS" && c.secretAccessKey == Self.secret)
        #expect(imds.requests.map(\.method) == ["PUT", "GET", "GET"])
    }

    /// A provider whose credentials expire `lifetime` seconds after they are issued.
    final class Issuer: CredentialsProvider {
        let calls = AtomicCounter()
        let lifetime: TimeInterval
        init(lifetime: TimeInterval) { self.lifetime = lifetime }
        func credentials() async throws -> S3Credentials {
            calls.increment()
            try await Task.sleep(nanoseconds: 20_000_000)
            return S3Credentials(accessKeyID: "K\(calls.value)", secretAccessKey: "s", expiration: Date().addingTimeInterval(lifetime))
        }
    }

    @Test func temporaryCredentialsRefreshBeforeTheyExpire() async throws {
        let long = Issuer(lifetime: 3600)
        let cached = RefreshingCredentials(long, refreshWindow: 300)
        let keys = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await cached.credentials().accessKeyID } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(keys == ["K1"] && long.calls.value == 1, "concurrent callers share one fetch")
        _ = try await cached.credentials()
        #expect(long.calls.value == 1, "an hour's credentials are reused")
        // Credentials inside the refresh window are renewed on the next call.
        let short = Issuer(lifetime: 120)
        let refreshing = RefreshingCredentials(short, refreshWindow: 300)
        #expect(try await refreshing.credentials().accessKeyID == "K1")
        #expect(try await refreshing.credentials().accessKeyID == "K2")
        #expect(short.calls.value == 2)
    }

    @Test func noSourceIsAnAccessDeniedErrorThatShowsNoSecret() async throws {
        let home = tempDir()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let env = AWSEnvironment(variables: ["AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SESSION_TOKEN": Self.token,
                                             "AWS_EC2_METADATA_DISABLED": "true"], home: home)
        let error = await #expect(throws: StoreError.self) { try await CredentialChain.default(env).credentials() }
        #expect(error?.code == .accessDenied)
        let text = "\(String(describing: error)) \(String(reflecting: error))"
        #expect(!text.contains(Self.secret) && !text.contains(Self.token))
        let creds = S3Credentials(accessKeyID: "AKID", secretAccessKey: Self.secret, sessionToken: Self.token)
        for shown in ["\(creds)", String(reflecting: creds)] {
            #expect(!shown.contains(Self.secret) && !shown.contains(Self.token))
        }
    }
}

@Suite struct SecretLeakTests {
    /// Everything a failing call or a debugging user can print: descriptions, reflections and
    /// dumps of configurations, providers, environments and errors.
    @Test func noDescriptionReflectionOrDumpShowsASecret() async throws {
        let secret = "leak-me-SECRET-0123456789", token = "leak-me-TOKEN-abcdef"
        let env = AWSEnvironment(variables: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": secret,
                                             "AWS_SESSION_TOKEN": token, "AWS_EC2_METADATA_DISABLED": "true"])
        var config = try S3Configuration.fromEnvironment(bucket: "b", endpoint: "http://127.0.0.1:9", environment: env)
        config.credentials = S3Credentials(accessKeyID: "AKID", secretAccessKey: secret, sessionToken: token)
        config.maxAttempts = 1
        let store = try S3Store(config)
        let error = await #expect(throws: StoreError.self) { try await store.read("x") }  // nothing listens on :9
        // S3 Express (CreateSession fails: nothing listens) and DynamoDB (PutItem fails).
        var expressConfig = config
        expressConfig.bucket = "b--use1-az4--x-s3"
        let express = try S3ExpressStore(expressConfig)
        let expressError = await #expect(throws: StoreError.self) { try await express.put("x", [1]) }
        var ddbConfig = DynamoDBConfiguration(table: "commits", endpoint: "http://127.0.0.1:9", credentials: config.credentials)
        ddbConfig.maxAttempts = 1
        let commits = try DynamoDBCommitStore(objects: store, baseURI: "s3://b/", configuration: ddbConfig)
        let ddbError = await #expect(throws: StoreError.self) { _ = try await commits.latestVersion() }
        var shown: [String] = []
        for value in [config, env, EnvironmentCredentials(env), StaticCredentials(config.credentials), config.credentials,
                      store, error as Any, express, expressError as Any, ddbConfig, commits, ddbError as Any] as [Any] {
            shown.append(String(describing: value))
            shown.append(String(reflecting: value))
            var dumped = ""
            dump(value, to: &dumped)
            shown.append(dumped)
        }
        for text in shown {
            #expect(!text.contains(secret) && !text.contains(token), "leaked in: \(text.prefix(300))")
        }
    }
}
