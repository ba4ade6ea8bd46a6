using System.Text.Json;
using LoraBridge.Prompting;

namespace LoraBridge.Tokenizers.Tests;

// The tokenizer's str.strip() is Prompting's PyText.Strip (one home for Python's str semantics). Its space set is
// written by hand, so it is checked against the interpreter over every code point, as the generated table was.
public class PyTextSpaceTests
{
    [Fact]
    public void IsSpaceIsCPythonsStrIsspaceForEveryCodePoint()
    {
        var python = JsonSerializer.Deserialize<int[]>(
            TestPython.Run("import json; print(json.dumps([c for c in range(0x110000) if chr(c).isspace()]))"))!;
        Assert.NotEmpty(python);
        Assert.Equal(python, Enumerable.Range(0, 0x110000).Where(PyText.IsSpace));
    }
}
