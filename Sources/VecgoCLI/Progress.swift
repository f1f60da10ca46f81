// The progress report of `vecgo import`: a line redrawn in place on a terminal, a plain line
// every few seconds elsewhere.
import Foundation

/// Reports rows, rows per second, the ETA (from the bytes of the input read) and the bytes uploaded.
final class ImportProgress {
    private let totalBytes: Int
    private let interactive = isatty(STDERR_FILENO) == 1
    private let started = ContinuousClock.now
    private var lastReport = ContinuousClock.now
    private var drew = false

    init(totalInputBytes: Int) { totalBytes = totalInputBytes }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    private static func bytes(_ n: Int) -> String {
        n >= 1 << 30 ? String(format: "%.2f GiB", Double(n) / Double(1 << 30))
            : n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / Double(1 << 20)) : "\(n) B"
    }

    /// Reports when it is time: every 0.2 s on a terminal, every 5 s elsewhere.
    func update(rows: Int, inputBytes: Int, uploaded: Int, committed: Int) {
        let now = ContinuousClock.now
        guard Self.seconds(now - lastReport) >= (interactive ? 0.2 : 5) else { return }
        lastReport = now
        emit(rows: rows, inputBytes: inputBytes, uploaded: uploaded, committed: committed, final: false)
    }

    /// The last report, always.
    func finish(rows: Int, inputBytes: Int, uploaded: Int, committed: Int) {
        emit(rows: rows, inputBytes: inputBytes, uploaded: uploaded, committed: committed, final: true)
    }

    private func emit(rows: Int, inputBytes: Int, uploaded: Int, committed: Int, final: Bool) {
        let elapsed = max(Self.seconds(ContinuousClock.now - started), 1e-6)
        let rate = Double(rows) / elapsed
        let fraction = totalBytes > 0 ? min(1, Double(inputBytes) / Double(totalBytes)) : 0
        var eta = "?"
        if final {
            eta = "done in " + String(format: "%.1f s", elapsed)
        } else if fraction > 0 {
            let left = elapsed * (1 - fraction) / fraction
            eta = left >= 60 ? String(format: "ETA %dm%02ds", Int(left) / 60, Int(left) % 60) : String(format: "ETA %.0f s", left)
        }
        let figures = "\(rows) rows, \(String(format: "%.0f", rate)) rows/s, \(eta), \(Self.bytes(uploaded)) uploaded, \(committed) rows committed"
        if interactive {
            let width = 24, filled = Int(fraction * Double(width))
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
            let text = "\r\u{1B}[K\(bar) \(String(format: "%3.0f%%", fraction * 100)) \(figures)" + (final ? "\n" : "")
            FileHandle.standardError.write(Data(text.utf8))
            drew = !final
        } else {
            FileHandle.standardError.write(Data("import: \(figures)\n".utf8))
        }
    }

    /// Ends a half-drawn terminal line before an error message.
    func interrupt() {
        if drew { FileHandle.standardError.write(Data("\n".utf8)) }
        drew = false
    }
}
