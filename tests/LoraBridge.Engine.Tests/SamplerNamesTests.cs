using System.Text.Json;
using LoraBridge.Engine;

namespace LoraBridge.Engine.Tests;

public sealed class SamplerNamesTests
{
    [Fact]
    public void TheCSharpListIsThePythonRegistry()
    {
        var python = JsonSerializer.Deserialize<string[]>(
            TestPython.Run("import json; from lorabridge.samplers import SAMPLERS; print(json.dumps(list(SAMPLERS)))"))!;
        Assert.Equal(python, SamplerNames.Names);
        Assert.Equal(SamplerNames.Names.Count, SamplerNames.Names.Distinct().Count());
    }
}
