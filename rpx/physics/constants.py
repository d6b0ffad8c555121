"""Physical constants (SI, CODATA 2018 exact values).

Since the 2019 SI redefinition the Avogadro constant, the elementary charge and the
Boltzmann constant are exact, so R = N_A·k and F = N_A·e are exact too.
Source: CODATA 2018 (Tiesinga et al., Rev. Mod. Phys. 93, 025010, 2021).
"""

N_A = 6.02214076e23  # 1/mol, exact
E_CHARGE = 1.602176634e-19  # C, exact
K_B = 1.380649e-23  # J/K, exact

R = N_A * K_B  # J/(mol·K) = 8.314462618...
F = N_A * E_CHARGE  # C/mol = 96485.33212...

MV_PER_V = 1e3  # mV per V
