import Foundation

/// The text table of `spor-access migrate --status`.
public enum MigrationStatusTable {
    public static func render(_ rows: [MigrationStatus]) -> String {
        var lines = ["VERSION  STATE    APPLIED AT            NAME"]
        for row in rows {
            let applied = row.appliedAt.map { $0.formatted(.iso8601) } ?? "-"
            lines.append(
                String(format: "%04d", row.version) + "     "
                    + row.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                    + applied.padding(toLength: 22, withPad: " ", startingAt: 0) + row.name)
        }
        let pending = rows.filter { $0.state == .pending }.count
        let changed = rows.filter { $0.state == .changed }.count
        lines.append("\(rows.count - pending - changed) applied, \(pending) pending, \(changed) changed")
        return lines.joined(separator: "\n")
    }
}
