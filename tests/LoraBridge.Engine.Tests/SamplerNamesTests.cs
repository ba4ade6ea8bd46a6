using System.Diagnostics;
using System.Text.Json;
using LoraBridge.Engine;

namespace LoraBridge.Engine.Tests;

public sealed class SamplerNamesTests
{
    [Fact]
    public void TheCSharpListIsThePythonRegistry()
    {
        var psi = new ProcessStartInfo(TestPython.Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import json; from lorabridge.samplers import SAMPLERS; print(json.dumps(list(SAMPLERS)))");
        psi.Environment["PYTHONPATH"] = Path.Combine(SharedData.RepoRoot, "python");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        var python = JsonSerializer.Deserialize<string[]>(stdout)!;
        Assert.Equal(python, SamplerNames.Names);
        Assert.Equal(SamplerNames.Names.Count, SamplerNames.Names.Distinct().Count());
    }
}
