using System.Diagnostics;

namespace LoraBridge.TestSupport;

/// <summary>The Python interpreter the tests embed or run: one setting for every test project.</summary>
public static class TestPython
{
    /// <summary>Environment variable that overrides <see cref="Executable"/>.</summary>
    public const string EnvironmentVariable = "LORABRIDGE_TEST_PYTHON";

    /// <summary>
    /// <c>$LORABRIDGE_TEST_PYTHON</c>, else Debian's <c>/usr/bin/python3</c>: it has torch, numpy and pillow from apt
    /// (.ci/install-deps), where the first <c>python3</c> on PATH may not.
    /// </summary>
    public static string Executable { get; } =
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } p ? p : "/usr/bin/python3";

    /// <summary>
    /// Runs <c>python -c <paramref name="code"/></c> with the repository's <c>python/</c> folder on the path and returns
    /// its standard output; a non-zero exit fails the test with Python's standard error. For tests that check a C#
    /// copy of a rule against the Python home of the same rule.
    /// </summary>
    public static string Run(string code)
    {
        var psi = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(code);
        psi.Environment["PYTHONPATH"] = Path.Combine(SharedData.RepoRoot, "python");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Xunit.Assert.True(p.ExitCode == 0, stderr.Result);
        return stdout;
    }
}
