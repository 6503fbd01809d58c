using System.Diagnostics;
using System.Globalization;
using VmmSharp.Profiling;

namespace VmmSharp.Tests.Profiling;

/// <summary>Naming a profile's RIPs: a System.map, and an ELF's <c>.symtab</c> checked against <c>nm</c>.</summary>
public class SymbolTableTests
{
    private const string Map = """
        ffffffff81000000 T _text
        ffffffff81000100 t helper
        ffffffff81000200 D some_data
        ffffffff81000300 W weak_function
        not a symbol line
        """;

    [Fact]
    public void AnAddressIsNamedByTheLastTextSymbolAtOrBeforeIt()
    {
        SymbolTable table = SymbolTable.FromSystemMap(Map);
        Assert.Equal(3, table.Count); // the data symbol is not code
        Assert.Equal(new Symbol("_text", 0xffffffff81000000), table.Find(0xffffffff81000000));
        Assert.Equal(new Symbol("helper", 0xffffffff81000100), table.Find(0xffffffff810001ff));
        Assert.Equal(new Symbol("helper", 0xffffffff81000100), table.Find(0xffffffff81000250));
        Assert.Equal(new Symbol("weak_function", 0xffffffff81000300), table.Find(0xffffffff81000301));
    }

    [Fact]
    public void AnAddressBeforeTheFirstOrFarBeyondTheLastSymbolHasNoName()
    {
        SymbolTable table = SymbolTable.FromSystemMap(Map);
        Assert.Null(table.Find(0x401000));
        Assert.Null(table.Find(0xffffffff81000300 + (1UL << 20)));
    }

    [Fact]
    public void TextWithoutSymbolsIsRefusedWithAMessage()
    {
        InvalidDataException e = Assert.Throws<InvalidDataException>(() => SymbolTable.FromSystemMap("hello\nworld\n"));
        Assert.Contains("no text symbols", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnElfsFunctionsAreFoundWhereNmSaysTheyAre()
    {
        string dir = Directory.CreateTempSubdirectory("vmmsharp-symbols-").FullName;
        try
        {
            string source = Path.Combine(dir, "f.c"), elf = Path.Combine(dir, "f.elf");
            File.WriteAllText(source, "int second(int x) { return x * 3; }\nvoid _start(void) { for (;;) second(1); }\n");
            Run("gcc", $"-O1 -nostdlib -static -fno-pie -no-pie -o {elf} {source}");
            Dictionary<string, ulong> nm = Run("nm", elf).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(' '))
                .Where(f => f.Length == 3 && f[1] is "T" or "t")
                .ToDictionary(f => f[2], f => ulong.Parse(f[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));

            SymbolTable table = SymbolTable.Load(elf);
            foreach (string name in new[] { "_start", "second" })
            {
                Assert.Equal(new Symbol(name, nm[name]), table.Find(nm[name]));
                Assert.Equal(name, table.Find(nm[name] + 1)?.Name);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AnElfWhoseSectionHeadersLieOutsideTheFileIsRefused()
    {
        byte[] elf = new byte[64];
        "\u007fELF"u8.CopyTo(elf);
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little-endian
        BitConverter.TryWriteBytes(elf.AsSpan(0x28), 0x1000UL); // e_shoff past the end
        BitConverter.TryWriteBytes(elf.AsSpan(0x3a), (ushort)64);
        BitConverter.TryWriteBytes(elf.AsSpan(0x3c), (ushort)3);
        InvalidDataException e = Assert.Throws<InvalidDataException>(() => SymbolTable.FromElf(elf));
        Assert.Contains("outside the file", e.Message, StringComparison.Ordinal);
    }

    private static string Run(string tool, string arguments)
    {
        using Process p = Process.Start(new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })
            ?? throw new InvalidOperationException($"cannot start {tool}");
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), $"{tool} did not finish");
        Assert.True(p.ExitCode == 0, $"{tool} {arguments} failed: {error}");
        return output;
    }
}
