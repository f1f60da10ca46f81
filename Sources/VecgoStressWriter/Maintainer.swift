// The maintainer role: compaction and vacuum every interval on the prefix, through the same
// (faulty) store as the writers. Prints "COMPACT <version|none>", "VACUUM <oldest retained>
// <manifests deleted> <objects deleted>", "ERROR <code>" (it goes on), then "DONE".
import Foundation
import Stores
import Vecgo

func runMaintainer() async throws {
    let interval: Double = try number("--interval", 5), retain: Int = try number("--retain", 20)
    let grace: Double = try number("--grace", 20), age: Double = try number("--max-commit-age", 10)
    let duration: Double = try number("--duration", 1e9)
    let stopFile = argument("--stop-file")
    let faulty = try store(at: argument("--endpoint"))
    let deadline = ContinuousClock.now + .seconds(duration)
    var db: Vecgo?
    while !stopRequested(stopFile) && ContinuousClock.now < deadline {
        try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
        do {
            // A maintainer is a writer without writes: it needs the database to exist.
            if db == nil { db = try await Vecgo.open(.remote(faulty), .maxCommitObjectAge(age)) }
            guard let db else { continue }
            do {
                let r = try await db.compact()
                say("COMPACT \(r.version.map(String.init) ?? "none")")
            } catch let e as VecgoError where e.code == .conflict {
                say("COMPACT conflict")
            }
            let r = try await db.vacuum(retainVersions: retain, gracePeriod: grace)
            say("VACUUM \(r.oldestRetainedVersion) \(r.manifestsDeleted) \(r.objectsDeleted)")
        } catch {
            say("ERROR \(errorCode(error))")
            FileHandle.standardError.write("maintainer: \(error)\n".data(using: .utf8)!)
            // A failed maintenance call may leave the handle behind the newest version: open anew.
            try? await db?.close()
            db = nil
        }
    }
    try await db?.close()
    say("DONE")
}
