#:property GenerateDocumentationFile=true
#:property NoWarn=CS1591

// Reads the results of one `dotnet test` run and names every test that failed or hung, with its message.
//
//   dotnet run eng/test-report.cs -- <results directory> [<console log of the run>]
//
// The results directory holds the run's TRX files (one per test project). A test "hung" when its failure is a hang
// guard's ("Hung: ..." from TestWait or from the guarded test framework's per-run guard); a test host that blame
// ended is found in the console log ("The test running when the crash occurred"). The last line is always
// "passed=N failed=N hung=N", for eng/flake-hunt.sh to read.
using System.Xml.Linq;

if (args.Length is < 1 or > 2 || !Directory.Exists(args[0]))
{
    Console.Error.WriteLine("usage: dotnet run eng/test-report.cs -- <results directory> [<console log>]");
    return 2;
}

XNamespace trx = "http://microsoft.com/schemas/VisualStudio/TeamTest/2010";
int passed = 0, failed = 0, hung = 0;
foreach (string file in Directory.EnumerateFiles(args[0], "*.trx", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
{
    XDocument document = XDocument.Load(file);
    foreach (XElement result in document.Descendants(trx + "UnitTestResult"))
    {
        string outcome = (string?)result.Attribute("outcome") ?? "";
        if (outcome == "Passed")
        {
            passed++;
            continue;
        }

        if (outcome != "Failed")
        {
            continue;
        }

        string name = (string?)result.Attribute("testName") ?? "(unnamed test)";
        string message = result.Descendants(trx + "Message").FirstOrDefault()?.Value.Trim() ?? "(no message)";
        bool isHang = message.Contains("Hung:", StringComparison.Ordinal);
        if (isHang)
        {
            hung++;
        }
        else
        {
            failed++;
        }

        Console.WriteLine($"{(isHang ? "HUNG" : "FAILED")} {name}");
        foreach (string line in message.Split('\n').Take(12))
        {
            Console.WriteLine("    " + line.TrimEnd('\r'));
        }
    }
}

// A test host ended by blame (or crashed) reports the test it was running only on the console.
if (args.Length == 2 && File.Exists(args[1]))
{
    string[] log = File.ReadAllLines(args[1]);
    int aborted = log.Count(l => l.Trim() == "Test Run Aborted.");
    int named = 0;
    for (int i = 0; i < log.Length; i++)
    {
        if (log[i].Contains("The test running when the crash occurred", StringComparison.Ordinal))
        {
            named++;
            Console.WriteLine($"HUNG {(i + 1 < log.Length ? log[i + 1].Trim() : "(not named)")}");
            Console.WriteLine("    the test host was ended while this test ran (see the blame Sequence file and the log above it)");
        }
    }

    for (int i = named; i < aborted; i++)
    {
        Console.WriteLine("HUNG (a test host ended without naming the test it ran; see the log)");
    }

    hung += Math.Max(named, aborted);
}

Console.WriteLine($"passed={passed} failed={failed} hung={hung}");
return 0;
