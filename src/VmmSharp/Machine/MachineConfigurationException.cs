namespace VmmSharp.Machine;

/// <summary>
/// A <see cref="MachineOptions"/> value that cannot be used: a missing file, a memory size or CPU count the layout or
/// the host cannot take. The message names the option and the offending value.
/// </summary>
public sealed class MachineConfigurationException : VmmException
{
    /// <summary>Creates the exception for option <paramref name="option"/>.</summary>
    public MachineConfigurationException(string option, string message, Exception? innerException = null)
        : base(message, innerException ?? new ArgumentException(message, option))
    {
        Option = option;
    }

    /// <summary>
    /// The exception for option <paramref name="option"/> that a lower layer's <paramref name="error"/> makes, its
    /// message after <paramref name="prefix"/>. The message is for a user who set the option, so it leaves out the
    /// " (Parameter 'x')" suffix that names the lower layer's parameter.
    /// </summary>
    internal static MachineConfigurationException FromArgument(string option, ArgumentException error, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(error);
        string message = error.ParamName is null ? error.Message : error.Message.Replace($" (Parameter '{error.ParamName}')", "", StringComparison.Ordinal);
        return new MachineConfigurationException(option, prefix + message, error);
    }

    /// <summary>Creates the exception.</summary>
    public MachineConfigurationException(string message)
        : base(message)
    {
        Option = "";
    }

    /// <summary>Creates the exception.</summary>
    public MachineConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Option = "";
    }

    /// <summary>Creates the exception.</summary>
    public MachineConfigurationException()
    {
        Option = "";
    }

    /// <summary>The <see cref="MachineOptions"/> property at fault (e.g. <c>KernelPath</c>, <c>MemorySize</c>).</summary>
    public string Option { get; }
}
