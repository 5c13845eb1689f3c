import Foundation
import Testing
import TesseraCore

@Suite("Civil dates: days since 1970 and back, as the Gregorian calendar counts them")
struct CivilDateTests {
    @Test("known dates, leap days and era edges; every day from 1600 to 2400 goes there and back, one day after another")
    func bothWays() {
        #expect(CivilDate.days(year: 1970, month: 1, day: 1) == 0)
        #expect(CivilDate.days(year: 2000, month: 2, day: 29) == 11_016)
        #expect(CivilDate.days(year: 1969, month: 12, day: 31) == -1)
        #expect(CivilDate.date(days: 2_932_896) == (9999, 12, 31))
        #expect(CivilDate.date(days: -719_468) == (0, 3, 1))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var previous: (year: Int, month: Int, day: Int)? = nil
        for days in CivilDate.days(year: 1600, month: 1, day: 1)...CivilDate.days(year: 2400, month: 12, day: 31) {
            let date = CivilDate.date(days: days)
            #expect(CivilDate.days(year: date.year, month: date.month, day: date.day) == days)
            if let previous, previous.day != date.day - 1 {
                // A new month: the day before was its month's last.
                #expect(date.day == 1 && previous.day == calendar.range(of: .day, in: .month,
                    for: calendar.date(from: DateComponents(year: previous.year, month: previous.month, day: 1))!)!.count)
            }
            previous = date
        }
    }
}
