import AccessDomain
import Foundation

/// Reads the OMS import file: RFC 4180 CSV with a header naming `name`, `country`, `city` and optionally `id`.
public enum OrganisationCSV {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String) throws -> [StaffAdministration.OrganisationRow] {
        let records = try records(text)
        guard let header = records.first?.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) else {
            throw ParseError(description: "the file is empty; expected a header row name,country,city[,id]")
        }
        guard let name = header.firstIndex(of: "name"), let country = header.firstIndex(of: "country"),
            let city = header.firstIndex(of: "city")
        else { throw ParseError(description: "the header must name the columns name, country and city (got \(header.joined(separator: ",")))") }
        let id = header.firstIndex(of: "id")
        var rows: [StaffAdministration.OrganisationRow] = []
        for (offset, record) in records.dropFirst().enumerated() where !(record.count == 1 && record[0].isEmpty) {
            let line = offset + 2
            guard record.count == header.count else {
                throw ParseError(description: "line \(line): \(record.count) fields, the header has \(header.count)")
            }
            let code = record[country].trimmingCharacters(in: .whitespaces).uppercased()
            guard code.count == 2, code.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                throw ParseError(description: "line \(line): country '\(record[country])' is not a two-letter ISO code")
            }
            var organisation: OrganisationID?
            if let id, !record[id].isEmpty {
                guard let parsed = OrganisationID(record[id].trimmingCharacters(in: .whitespaces)) else {
                    throw ParseError(description: "line \(line): id '\(record[id])' is not like ORG-100000123")
                }
                organisation = parsed
            }
            let trimmedName = record[name].trimmingCharacters(in: .whitespaces)
            let trimmedCity = record[city].trimmingCharacters(in: .whitespaces)
            guard !trimmedName.isEmpty, !trimmedCity.isEmpty else {
                throw ParseError(description: "line \(line): name and city are required")
            }
            rows.append(.init(id: organisation, name: trimmedName, country: code, city: trimmedCity))
        }
        return rows
    }

    /// RFC 4180 records: quoted fields may hold commas, doubled quotes and line breaks.
    static func records(_ text: String) throws -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if quoted {
                if character == "\"" {
                    let next = text.index(after: index)
                    if next < text.endIndex && text[next] == "\"" {
                        field.append("\"")
                        index = next
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(character)
                }
            } else {
                switch character {
                case "\"": quoted = true
                case ",":
                    record.append(field)
                    field = ""
                case "\n", "\r\n":
                    record.append(field)
                    records.append(record)
                    record = []
                    field = ""
                case "\r": break
                default: field.append(character)
                }
            }
            index = text.index(after: index)
        }
        if quoted { throw ParseError(description: "a quoted field is not closed") }
        if !field.isEmpty || !record.isEmpty {
            record.append(field)
            records.append(record)
        }
        return records
    }
}
