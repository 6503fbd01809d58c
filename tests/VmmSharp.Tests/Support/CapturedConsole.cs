using System.Text;
using VmmSharp.Devices.Consoles;

namespace VmmSharp.Tests.Support;

/// <summary>A guest console whose output is collected in memory, for machines under test.</summary>
internal sealed class CapturedConsole : IDisposable
{
    private static readonly TimeSpan DrainBound = TimeSpan.FromSeconds(10);

    private readonly MemoryStream _sink = new();

    public CapturedConsole(IConsoleInput? input = null)
    {
        Output = new ConsoleOutput(_sink);
        Console = new HostConsole(Output, input);
    }

    public ConsoleOutput Output { get; }

    public HostConsole Console { get; }

    /// <summary>Everything the guest wrote, once it has drained to the sink.</summary>
    public byte[] Bytes
    {
        get
        {
            Assert.True(Output.Flush(DrainBound), "the console output did not drain into a memory stream");
            lock (_sink)
            {
                return _sink.ToArray();
            }
        }
    }

    public string Text => Encoding.ASCII.GetString(Bytes);

    public void Dispose()
    {
        Output.Dispose();
        _sink.Dispose();
    }
}
