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
}
