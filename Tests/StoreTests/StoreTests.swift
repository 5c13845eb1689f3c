import Testing
@testable import Store
import TesseraCore

@Test func placeholderUntilSuite() { #expect(Bool(true)) }
